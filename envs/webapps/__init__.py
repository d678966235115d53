"""The desktop: web apps over the world's state (an ASGI app per episode), driven in real Chromium by the browser
backend or played by a person through `python -m envs.desktop`."""
