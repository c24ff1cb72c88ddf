"""Sub-commands of `vljepa-ros`: one module each, exposing add_parser(subparsers) and run(args)."""
