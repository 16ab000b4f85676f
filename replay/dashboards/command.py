"""`chaos-replay dashboard influx|prometheus`: print a ready Grafana dashboard.

`chaos-replay` (and `chaos replay`) is one click command taking journals; a
first argument `dashboard` hands the rest of the command line to this one, so
`chaos-replay JOURNAL...` works as before (a journal file named `dashboard` is
given as `./dashboard`).
"""
import json

import click

from ..errors import EXIT_USAGE
from . import LAYOUTS, dashboard

__all__ = ["SUBCOMMAND", "dashboard_command", "WithDashboardSubcommand"]

SUBCOMMAND = "dashboard"


@click.command(name=SUBCOMMAND)
@click.argument("layout", type=click.Choice(LAYOUTS))
@click.option("--datasource", metavar="UID",
              help="Data source uid for every query (default: a data source picker on the dashboard).")
@click.option("--measurement", metavar="NAME",
              help="InfluxDB measurement the events are in (influx only; default chaostoolkit_events).")
@click.option("--uid", metavar="UID", help="Dashboard uid (default chaostoolkit-influx / chaostoolkit-prometheus).")
@click.option("--title", metavar="TITLE", help="Dashboard title.")
def dashboard_command(layout, datasource, measurement, uid, title):
    """Print the Grafana dashboard for the InfluxDB layout or the Prometheus metrics.

    Import it in Grafana (Dashboards > New > Import), POST it to /api/dashboards/db,
    or drop it in a file-provisioning folder.
    """
    try:
        board = dashboard(layout, datasource=datasource, measurement=measurement, uid=uid, title=title)
    except ValueError as error:
        click.echo(f"chaos-replay dashboard: error: {error}", err=True)
        raise SystemExit(EXIT_USAGE)
    click.echo(json.dumps(board, indent=2, ensure_ascii=False))


class WithDashboardSubcommand(click.Command):
    """The journals command, which also answers `dashboard LAYOUT [OPTIONS]`."""

    def parse_args(self, ctx, args):
        if args and args[0] == SUBCOMMAND:
            ctx.meta["chaosreplay.subcommand"] = list(args[1:])
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        rest = ctx.meta.get("chaosreplay.subcommand")
        if rest is None:
            return super().invoke(ctx)
        # No parent context: click would put the journals argument in the sub-command's usage line.
        with dashboard_command.make_context(f"{ctx.command_path} {SUBCOMMAND}", rest) as sub_ctx:
            return dashboard_command.invoke(sub_ctx)

    def format_usage(self, ctx, formatter):
        super().format_usage(ctx, formatter)
        formatter.write_usage(ctx.command_path, f"{SUBCOMMAND} {{{'|'.join(LAYOUTS)}}} [OPTIONS]")
