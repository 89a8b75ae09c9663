"""``codexgate instructions capture|show``: the system prompt used when a client sends none."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from codexgate.cli.common import console, fail, settings


def find_codex(explicit: Path | None) -> str | None:
    if explicit is not None:
        return str(explicit) if explicit.exists() else None
    local = Path("node_modules/.bin/codex")
    return shutil.which("codex") or (str(local.resolve()) if local.exists() else None)


def register(app: typer.Typer) -> None:
    instructions_app = typer.Typer(
        help="The instructions sent when a client gives no system prompt.", no_args_is_help=True
    )
    app.add_typer(instructions_app, name="instructions")

    @instructions_app.command("capture")
    def capture(
        ctx: typer.Context,
        model: Annotated[str, typer.Option("--model", help="Model to capture for.")] = "gpt-5",
        codex: Annotated[Path | None, typer.Option("--codex", help="Path to the codex binary.")] = None,
        as_default: Annotated[bool, typer.Option("--default", help="Also use it for every other model.")] = False,
    ) -> None:
        """Run your installed Codex CLI once against a local endpoint and keep its system prompt."""
        import asyncio

        from codexgate.files import atomic_write_text, ensure_private_dir
        from codexgate.upstream.capture import capture_codex_prompt
        from codexgate.upstream.instructions import DEFAULT_CAPTURE, capture_file

        config = settings(ctx)
        binary = find_codex(codex)
        if binary is None:
            fail("no `codex` binary found (install @openai/codex, or pass --codex PATH)")
        try:
            prompt = asyncio.run(capture_codex_prompt(binary, model))
        except (RuntimeError, OSError) as exc:
            fail(f"capture failed: {exc}")
        ensure_private_dir(config.instructions_dir)
        targets = [capture_file(config.instructions_dir, model)]
        if as_default:
            targets.append(capture_file(config.instructions_dir, DEFAULT_CAPTURE))
        for target in targets:
            atomic_write_text(target, prompt + "\n")
            console.print(f"Stored {len(prompt)} characters of the Codex CLI's system prompt in {target}")

    @instructions_app.command("show")
    def show(
        ctx: typer.Context,
        model: Annotated[str, typer.Option("--model", help="Model to check.")] = "gpt-5",
    ) -> None:
        """Say which instructions source a request for MODEL without a system prompt would use."""
        from codexgate.upstream.instructions import instruction_source

        kind, path = instruction_source(settings(ctx), model)
        console.print(f"{model}: {kind}" + (f" ({path})" if path else " (codexgate's one-line default)"))
