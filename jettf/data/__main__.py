"""``python -m jettf.data``: build and inspect jettf datasets.

    python -m jettf.data build NAME[/CONFIG] --data-dir DIR [--manual-dir M] [--n-jets N]
    python -m jettf.data build NAME --beam --beam-runner dask [--dask-address tcp://H:8786] [--beam-workers N]
    python -m jettf.data info NAME[/CONFIG] --data-dir DIR
    python -m jettf.data list
"""

from __future__ import annotations

import argparse
import json
import sys


PROG = "python -m jettf.data"


def main(argv=None) -> int:
    """Build, describe or list datasets (quiet start, SIGTERM as Ctrl-C, one-line errors: jettf.cli)."""
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0], epilog="--debug: show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a dataset (public files from --manual-dir, else a generated sample)")
    b.add_argument("name", help="NAME or NAME/CONFIG, e.g. top_tagging_images/quick")
    b.add_argument("--data-dir", default=None, help="data directory (default: $JETTF_DATA_DIR or ./data, as every jettf command)")
    b.add_argument("--manual-dir", default=None, help="directory with the public files")
    b.add_argument("--n-jets", type=int, default=None,
                   help="jets per class (cap on public files, or how many to generate); builds <config>-n<N>")
    b.add_argument("--download-dir", default=None, help="cache of generated samples (default DATA_DIR/downloads)")
    b.add_argument("--overwrite", action="store_true", help="rebuild even if the dataset exists")
    b.add_argument("--workers", type=int, default=1,
                   help="processes for Pythia generation and for making examples (without --beam)")
    b.add_argument("--beam", action="store_true", help="prepare with Apache Beam (pip install 'jettf[beam]')")
    b.add_argument("--beam-runner", default=None,
                   help="DirectRunner (default: Beam's in-process runner, never the Prism download), dask (Beam's "
                        "DaskRunner: a local Dask cluster, or --dask-address), or a Beam runner such as "
                        "DataflowRunner, FlinkRunner, SparkRunner with its --beam-options; implies --beam")
    b.add_argument("--beam-workers", type=int, default=None,
                   help="local worker processes: DirectRunner's (multi-processing) or the Dask LocalCluster's "
                        "(default: all cores)")
    b.add_argument("--dask-address", default=None, metavar="tcp://HOST:8786",
                   help="with --beam-runner dask: the Dask scheduler to run on (default: a LocalCluster here)")
    b.add_argument("--beam-options", default=None, metavar="'--flag=value ...'",
                   help="more Beam pipeline options, written with '=', e.g. --beam-options='--project=P --region=R "
                        "--temp_location=gs://B/tmp' (Dataflow) or --beam-options='--flink_master=H:8081' (Flink)")
    i = sub.add_parser("info", help="describe a built dataset")
    i.add_argument("name")
    i.add_argument("--data-dir", default=None)
    i.add_argument("--json", action="store_true", help="print the metadata as JSON (arrays left out)")
    sub.add_parser("list", help="list the builders and their configs")
    args = parser.parse_args(argv)

    if args.command == "list":
        from jettf.data.info import builder_class, dataset_names

        for name in dataset_names():
            cls = builder_class(name)
            print(f"{name} (version {cls.VERSION}, default config {cls.DEFAULT_BUILDER_CONFIG_NAME})")
            for cfg in cls.BUILDER_CONFIGS:
                print(f"  {name}/{cfg.name}: {cfg.description}")
        return 0
    if args.command == "info":
        from jettf.data import load_info

        info = load_info(args.name, args.data_dir)
        if args.json:
            meta = {k: v for k, v in info.metadata.items() if k not in ("pixel_mean", "pixel_std", "feature_mean",
                                                                        "feature_std")}
            print(json.dumps(meta, indent=2, sort_keys=True))
        else:
            print(info.summary())
        return 0

    from jettf.data import build

    runner, beam_options, workers = _beam_settings(args, b)
    info = build(args.name, args.data_dir, args.manual_dir, args.n_jets, download_dir=args.download_dir,
                 overwrite=args.overwrite, beam_runner=runner, beam_options=beam_options, workers=workers)
    print(info.summary())
    print(f"{info.name} ready: tfds.load({info.name!r}, data_dir={str(info.builder.data_dir_root)!r}) "
          "after `import tfds_builders`")
    return 0


def _beam_settings(args, parser):
    """``(runner name or None, PipelineOptions or None, workers)`` from the build options."""
    import os
    import shlex

    from jettf.data.distributed import DIRECT_NAMES, is_dask

    runner = args.beam_runner or ("DirectRunner" if args.beam else None)
    if runner is None:
        for flag in ("beam_workers", "dask_address", "beam_options"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag.replace('_', '-')} needs --beam (and a --beam-runner)")
        return None, None, args.workers
    if args.dask_address is not None and not is_dask(runner):
        parser.error("--dask-address needs --beam-runner dask")
    flags = shlex.split(args.beam_options or "")
    workers = args.workers
    if is_dask(runner):
        if args.dask_address is not None:
            flags.append(f"--dask_client_address={args.dask_address}")
        else:
            workers = args.beam_workers or os.cpu_count() or 1
    elif runner.lower() in DIRECT_NAMES and args.beam_workers and args.beam_workers > 1:
        flags += [f"--direct_num_workers={args.beam_workers}", "--direct_running_mode=multi_processing"]
    if not flags:
        return runner, None, workers
    from apache_beam.options.pipeline_options import PipelineOptions

    return runner, PipelineOptions(flags), workers


if __name__ == "__main__":
    sys.exit(main())
