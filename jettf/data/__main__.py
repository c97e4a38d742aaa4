"""``python -m jettf.data``: build and inspect jettf datasets.

    python -m jettf.data build NAME[/CONFIG] --data-dir DIR [--manual-dir M] [--n-jets N]
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
    b.add_argument("--beam-runner", default="DirectRunner", help="Beam runner (with --beam)")
    b.add_argument("--beam-workers", type=int, default=None, help="DirectRunner workers (with --beam)")
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

    beam_options = None
    if args.beam and args.beam_workers:
        from apache_beam.options.pipeline_options import PipelineOptions

        beam_options = PipelineOptions(direct_num_workers=args.beam_workers, direct_running_mode="multi_processing")
    info = build(args.name, args.data_dir, args.manual_dir, args.n_jets, download_dir=args.download_dir,
                 overwrite=args.overwrite, beam_runner=args.beam_runner if args.beam else None,
                 beam_options=beam_options, workers=args.workers)
    print(f"{info.name} ready: tfds.load({info.name!r}, data_dir={str(info.builder.data_dir_root)!r}) "
          "after `import tfds_builders`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
