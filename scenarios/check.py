"""`python -m scenarios.check`: the earlier name of `python -m envs.check`, kept so documented commands still work.

Replaying references runs episodes, so the command lives in the run layer; this alias only hands over to it when
run as a program and imports nothing of the higher layers.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("envs.check", run_name="__main__", alter_sys=True)
