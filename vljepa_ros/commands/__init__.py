"""Sub-commands of `vljepa-ros`: one module each, exposing add_parser(subparsers) and run(args)."""
from __future__ import annotations

import importlib


def add_node_command(subparsers, name: str, help: str, module_name: str) -> None:
    """A sub-command whose options (`build_parser()`) and entry (`run(args)`) live in a node module,
    which also runs stand-alone (`python -m <module>`)."""
    template = importlib.import_module(module_name).build_parser()
    parser = subparsers.add_parser(name, help=help, description=template.description, parents=[template],
                                   add_help=False, formatter_class=template.formatter_class)
    parser.set_defaults(func=lambda args: importlib.import_module(module_name).run(args))
