"""Held-out phrasings of the task vocabulary: no training run may see these words.

Perception is trained on captions made only of the palette's colour names and the shape
names ("red block"); tests/perception/test_train_lit.py checks that no word below
appears in them. Synonyms are common names for the rendered colours, chosen before the
model was evaluated with them; a few are deliberately loose (navy for a bright blue,
salmon for pink).
"""

COLOR_WORDS = {
    "red": ("crimson", "scarlet", "cherry"),
    "green": ("emerald", "forest green"),
    "blue": ("navy", "cobalt", "sapphire"),
    "yellow": ("golden", "lemon"),
    "orange": ("tangerine", "pumpkin"),
    "purple": ("violet", "plum"),
    "pink": ("salmon", "rose", "bubblegum"),
    "cyan": ("teal", "turquoise", "aqua"),
    "brown": ("chocolate", "chestnut", "tan"),
    "gray": ("grey", "silver", "slate"),
}
SHAPE_WORDS = {"block": ("cube", "brick"), "bowl": ("dish", "basin")}
VARIANTS = 6


def phrase(color: str, shape: str, variant: int) -> str:
    """The `variant`-th held-out phrasing of "<color> <shape>".

    Variants cycle through the colour synonyms and alternate the shape word between its
    synonyms and the plain word, with and without an article: "crimson cube",
    "the scarlet block", "cherry brick", ...
    """
    colors = COLOR_WORDS[color]
    shapes = SHAPE_WORDS[shape] + (shape,)
    article = "the " if variant % 2 else ""
    return f"{article}{colors[variant % len(colors)]} {shapes[variant % len(shapes)]}"


def all_words() -> set[str]:
    words = {w for ws in COLOR_WORDS.values() for w in ws} | {w for ws in SHAPE_WORDS.values() for w in ws}
    return {part for w in words for part in w.split()} - {"green"}  # "forest green" shares "green"
