# Makes `tests` a regular package so that `tests.executor_doubles` resolves here: the draccus wheel
# installs a top-level `tests` package into site-packages, which would otherwise shadow this
# directory (a regular package wins over a namespace directory wherever it sits on sys.path).
