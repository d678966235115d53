"""`python -m envs.desktop scenario=<id> [port=N]`: serve one scenario's desktop on 127.0.0.1 for a person to play.

(Being built in this session: see issue 9, item 3.)"""
