"""The planning benchmark (issue 14): instruction sets per task and split, and their grading."""
