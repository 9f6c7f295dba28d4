from finrecon.cli import app

app()
