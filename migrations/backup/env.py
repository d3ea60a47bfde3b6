from jinji.migrate import run_env

run_env()
