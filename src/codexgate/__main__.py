from codexgate.cli.main import run

run()
