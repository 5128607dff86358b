HELP = "browse, sample from and compare the runs in a folder, in a local web page"
DESCRIPTION = """Start the explorer: a local web app over every run under RUNS_DIR (default runs/).

It lists the runs (family, data, steps, last metrics) and, for one run, shows its training
curves (live while it trains), sample grids over training, showcase pictures and eval.json;
samples on demand with the family's own options; interpolates between two seeds or two
uploaded images and decodes points of a 2-d latent plane where the family has a decoder; and
links the compare reports. Its JSON API (/api/runs, /api/runs/ID, POST /api/runs/ID/sample,
/api/jobs/JOB) serves scripts too. It binds to 127.0.0.1 unless --host says otherwise; nothing
is fetched from or sent to the internet. Needs the serve extra: pip install 'genzoo[serve]'."""


def add_arguments(p):
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="cpu", help="where models sample: cpu, cuda or auto")


def check_address(host: str, port: int) -> None:
    """Fail early, in one line, when the address cannot be listened on (uvicorn would exit)."""
    import socket

    from genzoo.errors import GenzooError
    if not 0 < port < 65536:
        raise GenzooError(f"--port {port}: must be in 1..65535")
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
    except OSError as e:
        raise GenzooError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def run(args) -> int:
    from genzoo.errors import GenzooError
    try:
        import uvicorn

        from genzoo.serve.app import LOCAL, create_app
    except ModuleNotFoundError as e:
        if e.name not in ("fastapi", "uvicorn", "starlette", "pydantic"):
            raise
        raise GenzooError(f"genzoo serve needs {e.name}: pip install 'genzoo[serve]'") from None
    from genzoo.serve.runs import RunsDir
    from genzoo.training.launch import check_device
    RunsDir(args.runs_dir)            # a missing folder or device is named before the port
    check_device(args.device)
    check_address(args.host, args.port)
    everywhere = args.host in ("0.0.0.0", "::", "")
    app = create_app(args.runs_dir, device=args.device,
                     hosts=["*"] if everywhere else list(dict.fromkeys([args.host, *LOCAL])))
    print(f"genzoo explorer: http://{args.host}:{args.port}/  (runs in {app.state.runs.root}; "
          f"Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
