"""The browser viewer of `python -m fmrobot.view`: what a run or suite folder holds as JSON (`folders`), the
local web app that serves it (`app`), and the page itself (`static/`: plain HTML, CSS and ES modules, no build step)."""
