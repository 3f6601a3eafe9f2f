from ccproxy_core.runtime.cli import main

main(prog_name="ccproxy")
