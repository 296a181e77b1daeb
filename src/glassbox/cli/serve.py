"""``glassbox serve MODEL``: a net behind an HTTP prediction API, with optional defences.

FastAPI and uvicorn (the ``serve`` extra) are imported inside the command, so that
registering it costs nothing.
"""

from __future__ import annotations

import click

from glassbox.cli import FiniteRange, cli, threads_option
from glassbox.extras import require


@cli.command("serve")
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: a free one, printed).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of random:SPEC."
)
@click.option(
    "--instance",
    type=click.IntRange(min=0),
    default=None,
    help="Which instance of a toy run directory to serve [default: 0].",
)
@click.option("--float32", is_flag=True, help="Defence: answer in float32.")
@click.option(
    "--round",
    "round_digits",
    metavar="K",
    type=click.IntRange(1, 17),
    default=None,
    help="Defence: round answers to K significant digits.",
)
@click.option(
    "--noise",
    metavar="SIGMA",
    type=FiniteRange(min=0.0),
    default=None,
    help="Defence: add N(0, SIGMA^2) noise to every answer.",
)
@click.option(
    "--noise-seed", type=click.IntRange(min=0), default=0, show_default=True, help="Noise stream."
)
@click.option("--label-only", is_flag=True, help="Defence: answer only the top-1 label.")
@click.option(
    "--api-key",
    "api_keys",
    metavar="KEY",
    multiple=True,
    help="Accept only this key (repeat for several); each key has its own budget.",
)
@click.option(
    "--budget",
    metavar="N",
    type=click.IntRange(min=0),
    default=None,
    help="Defence: most queries (rows) each key may ask [default: unlimited].",
)
@click.option(
    "--max-rows",
    metavar="N",
    type=click.IntRange(min=1),
    default=8192,
    show_default=True,
    help="Defence: most rows in one request.",
)
@click.option(
    "--max-body",
    metavar="MIB",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Largest request body, in MiB (lowered from ~200 MiB: the HTTP oracle splits its "
    "batches to fit; a JSON body of 8192 rows of 784 inputs no longer does).",
)
@click.option(
    "--state",
    metavar="PATH",
    default=None,
    help="SQLite file keeping each key's usage (budgets survive restarts; several services "
    "may share it), ':memory:' for none [default: one file per model in "
    "$XDG_DATA_HOME/glassbox/serve/, ~/.local/share when unset].",
)
@click.option(
    "--docs", is_flag=True, help="Serve /openapi.json and /docs (behind the key when keys are set)."
)
@click.option(
    "--log-json", is_flag=True, help="Log one JSON object per line instead of text lines."
)
@click.option(
    "--output",
    "output",
    metavar="NAME",
    default=None,
    help="The output of an ONNX file with several [default: its one real-valued (batch, k) output].",
)
@threads_option("BLAS threads of the service", "chosen by the model's input width")
def serve_command(
    model: str,
    host: str,
    port: int,
    seed: int,
    instance: int | None,
    float32: bool,
    round_digits: int | None,
    noise: float | None,
    noise_seed: int,
    label_only: bool,
    api_keys: tuple[str, ...],
    budget: int | None,
    max_rows: int,
    max_body: int,
    state: str | None,
    docs: bool,
    log_json: bool,
    output: str | None,
    threads: int | None,
) -> None:
    """Serve MODEL (random:SPEC, toy run dir, ONNX file or saved net) as a prediction API.

    POST /v1/predict takes {"inputs": [[...], ...]} (or raw float64, content type
    application/vnd.glassbox.float64) and answers {"outputs": [[...], ...]};
    GET /v1/info gives the dimensions and defences, GET /v1/usage the caller's queries,
    GET /v1/health (the one route open without a key) says the service is up. Usage and
    budgets live in --state. Prints the address on stdout, then one log line per request
    on stderr. Stop with Ctrl-C.
    """
    for module in ("fastapi", "uvicorn"):
        require(module, "glassbox serve")
    from glassbox.serve.run import bind, build_service, default_state, is_loopback, serve

    where = state if state is not None else str(default_state(model, seed, instance))

    service, desc = build_service(
        model,
        seed=seed,
        instance=instance,
        float32=float32,
        round_digits=round_digits,
        noise=noise,
        noise_seed=noise_seed,
        label=label_only,
        api_keys=api_keys,
        budget=budget,
        max_rows=max_rows,
        max_body=max_body * 2**20,
        state=where,
        docs=docs,
        output=output,
    )
    sock = bind(host, port)  # first: an address it cannot listen on is the one line said
    if not is_loopback(host):
        click.echo(
            f"glassbox serve: warning: listening on {host}, which is not loopback: "
            "other machines can query this model"
            + ("" if api_keys else " (and no --api-key is set)"),
            err=True,
        )

    def ready(url: str) -> None:
        said = f"serving {desc} at {url}; usage kept in {where}"
        if log_json:
            from glassbox.serve.logs import log_event

            log_event("start", said, url=url, state=where)
        else:
            click.echo(f"glassbox serve: {said}", err=True)
        click.echo(url)  # the one line on stdout: scripts read the address here
        import sys

        sys.stdout.flush()

    from glassbox.extract.threads import attack_threads, blas_threads

    # The same rule as the attack's: small products run fastest on one thread, and a
    # service beside other work (the demo's attack) must not spin a second one.
    with blas_threads(
        threads or attack_threads(service.oracle.input_dim, service.oracle.output_dim)
    ):
        serve(service, sock, ready, json_logs=log_json)
