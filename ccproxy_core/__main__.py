from ccproxy_core.cli import main

main(prog_name="ccproxy")
