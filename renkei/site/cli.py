"""The ``renkei`` console command.

renkei demo                       migrate, onboard the demo municipalities, serve
renkei onboard --code C --name N  onboard one municipality
renkei tenants                    list tenants
renkei migrate [--workers N]      migrate public, then every tenant schema behind the code
renkei purge [--dry-run]          retention purge in every (or one) tenant
renkei serve [--port N]           serve on 127.0.0.1
renkei check [--deploy]           system checks (secrets, and production settings)
renkei manage ARGS...             Django management commands, same data dir and database
renkei connectors                 list installed connectors and their streams
renkei import C --tenant T PATH   import with connector C into tenant T
renkei errors --tenant T RUN      CSV report of the rows a run rejected
renkei synth --tenant T --out D   write synthetic data in every built-in format
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psycopg


def _setup_django(*, refuse_weak_secrets: bool = True) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.site.settings")
    import django

    from renkei.platform import deploy_secrets

    if refuse_weak_secrets:
        try:  # `renkei serve` binds loopback; the embedded default may generate its keys
            deploy_secrets.refuse_to_start(bind_hosts=["127.0.0.1"])
        except deploy_secrets.MissingSecret as e:
            sys.exit(str(e))
    django.setup()


def _schema_ready() -> None:
    """Commands that use the database need its schema. On the embedded default it is made
    here (as `renkei demo` does); with DATABASE_URL migrating is a deploy step, and a schema
    behind the code is reported by :func:`main` in one line."""
    from renkei.platform import environment

    if not environment.embedded_database():
        return
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        print("データベースを準備しています（renkei migrate）…", file=sys.stderr)
        from renkei.tenants.schema import migrate_all

        _report_tenant_migration(migrate_all(verbosity=0), quiet=True)


def cmd_manage(args: argparse.Namespace) -> int:
    # Django's own system checks refuse (migrate, runserver); collectstatic at image build
    # time needs no secret.
    _setup_django(refuse_weak_secrets=False)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["renkei manage", *args.rest])
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    _setup_django(refuse_weak_secrets=False)
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    try:
        call_command("check", deploy=args.deploy)
    except SystemCheckError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


# What `renkei migrate` says about a tenant schema it had to leave alone.
_MIGRATE_PROBLEMS = {
    "missing_schema": "スキーマがありません（自治体は登録済み）",
    "no_migration_table": "スキーマに django_migrations 表がありません",
    "inconsistent_history": "適用記録の順序が依存関係と合いません",
    "missing_tables": "適用済みと記録された移行の表がありません",
    "apply_failed": "移行に失敗しました（このスキーマは失敗した移行の前の状態です）",
}


def _report_tenant_migration(report, *, quiet: bool = False) -> int:
    """Each schema left alone on its own line (stderr), then one summary line; 1 if any."""
    for p in report.problems:
        print(f"エラー: {p.schema}: {_MIGRATE_PROBLEMS[p.problem]} — {p.detail}", file=sys.stderr)
    if not quiet or report.problems:
        print(
            f"テナント {report.schemas} 件: 最新 {report.up_to_date}・更新 {len(report.migrated)}"
            f"・問題 {len(report.problems)}",
            file=sys.stderr if report.problems else sys.stdout,
        )
    if report.problems:
        print(
            "問題のあるスキーマは失敗した移行の前の状態のままです。原因を直して "
            "`renkei migrate` をもう一度実行すると、残りだけを更新します。",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.tenants.schema import DEFAULT_WORKERS, migrate_all

    report = migrate_all(verbosity=args.verbosity, workers=args.workers or DEFAULT_WORKERS)
    return _report_tenant_migration(report, quiet=args.verbosity == 0)


def cmd_onboard(args: argparse.Namespace) -> int:
    _setup_django()
    _schema_ready()
    from renkei.platform.audit import Actor
    from renkei.tenants.actions import OnboardingError, do_onboard_municipality

    try:
        m = do_onboard_municipality(
            args.code, args.name, args.prefecture, actor=Actor.command_line()
        )
    except OnboardingError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    print(f"登録しました: {m.code} {m.name}（{m.prefecture.name}）スキーマ {m.schema_name}")
    return 0


def cmd_tenants(args: argparse.Namespace) -> int:
    _setup_django()
    _schema_ready()
    from django.utils import timezone

    from renkei.tenants.models import Municipality

    rows = [("code", "name", "prefecture", "schema", "created")]
    for m in Municipality.objects.select_related("prefecture").order_by("code"):
        created = timezone.localtime(m.created_at).strftime("%Y-%m-%d %H:%M")
        rows.append(
            (m.code, m.name, f"{m.prefecture_id} {m.prefecture.name}", m.schema_name, created)
        )
    if len(rows) == 1:
        print(
            "登録された自治体はありません。`renkei onboard --code 131130 --name 渋谷区` で登録します。"
        )
        return 0
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True))
        )
    return 0


def _width(text: str) -> int:
    """Display width in a terminal: East Asian wide characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _no_release_warmup() -> None:
    """For a command that exits as soon as its change commits: a release warm-up in a
    background thread would be cut off (with the embedded server, by its shutdown: an error
    after 完了). The prefecture's next question makes what it needs itself. (This process's
    settings only: a server started later warms as configured.)"""
    from django.conf import settings

    settings.RENKEI_RELEASE_WARMUP = False


def cmd_purge(args: argparse.Namespace) -> int:
    _setup_django()
    _schema_ready()
    _no_release_warmup()
    from renkei.edudata.privacy import do_purge_expired
    from renkei.platform.audit import Actor
    from renkei.tenants.context import get_municipality, in_tenant
    from renkei.tenants.models import Municipality

    tenants = [get_municipality(args.tenant)] if args.tenant else Municipality.objects.all()
    for municipality in tenants:
        with in_tenant(municipality):
            report = do_purge_expired(
                municipality, actor=Actor.command_line(), dry_run=args.dry_run
            )
        print(_purge_summary(municipality, report))
    return 0


def _purge_summary(municipality, report) -> str:
    """Counts per leaving reason and per table, and the cutoff; never a name."""
    from renkei.edudata.codes import LeavingReason

    verb = "削除予定" if report.dry_run else "削除"
    pupils = "・".join(
        f"{LeavingReason(reason).label} {n} 人" for reason, n in report.pupils_by_reason.items()
    )
    rows = ", ".join(f"{k} {v}" for k, v in report.deleted.items()) or "なし"
    return (
        f"{municipality.code} {municipality.name}: 離籍日が {report.cutoff} より前"
        f"（離籍後 {municipality.retention_years} 年）の児童生徒 — {verb}: {pupils}"
        f"（合計 {sum(report.pupils_by_reason.values())} 人）; 行数: {rows}"
    )


def cmd_connectors(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.connectors import registry

    connectors, problems = registry.discover()
    for name, cls in connectors.items():
        streams = ", ".join(s.name for s in cls().discover())
        print(f"{name:<10} {cls.version:<6} {cls.title}\n{'':<17}streams: {streams}")
    for problem in problems:
        print(
            f"読み込めないコネクタ: {problem.entry_point}（パッケージ {problem.package}）: "
            f"{problem.message}",
            file=sys.stderr,
        )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    _setup_django()
    _schema_ready()
    _no_release_warmup()
    import json
    import time

    import yaml

    from renkei.connectors import registry
    from renkei.connectors.pipeline import Progress, do_import
    from renkei.platform.audit import Actor
    from renkei.tenants.codes import CodeError
    from renkei.tenants.context import UnknownTenant, get_municipality

    try:
        municipality = get_municipality(args.tenant)
        connector = registry.get(args.connector)
    except (UnknownTenant, CodeError, registry.UnknownConnector) as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    config = {}
    if args.config:
        text = Path(args.config).read_text(encoding="utf-8")
        config = (json.loads(text) if args.config.endswith(".json") else yaml.safe_load(text)) or {}

    class Bar(Progress):
        """Rows read, on a terminal."""

        def __init__(self) -> None:
            self.bar, self.last = None, 0
            if sys.stderr.isatty():
                from tqdm import tqdm

                desc = f"{connector.name} → {municipality.code}"
                self.bar = tqdm(unit=" 行", unit_scale=True, desc=desc)

        def rows(self, rows_read: int) -> None:
            if self.bar is not None:
                self.bar.update(rows_read - self.last)
            self.last = rows_read

    progress = Bar()
    started = time.monotonic()
    run = do_import(
        connector,
        municipality,
        paths=[Path(p) for p in args.paths],
        config=config,
        actor=Actor.command_line(),
        progress=progress,
    )
    seconds = time.monotonic() - started
    if progress.bar is not None:
        progress.bar.close()
    if run.status != "succeeded":
        print(f"取り込みに失敗しました（#{run.pk}）: {run.message}", file=sys.stderr)
        return 1
    rate = run.rows_read / seconds if seconds else 0
    print(
        f"取り込み #{run.pk} 完了: 読んだ行 {run.rows_read:,} / 取り込んだ行 {run.rows_accepted:,} / "
        f"除外した行 {run.rows_rejected:,} / {seconds:.1f} 秒 / {rate:,.0f} 行/秒"
    )
    if run.rows_skipped:
        print(
            f"分析除外の申出がある児童生徒の行 {run.rows_skipped:,} 行は取り込みませんでした"
            "（エラーではありません）"
        )
    if run.warnings:
        print(f"警告 {run.warnings:,} 件（取り込んだ行が規格に合っていません。種別「警告」）")
    if run.rows_rejected or run.warnings:
        print(
            f"除外した行と警告の一覧: renkei errors --tenant {municipality.code} {run.pk} > errors.csv"
        )
    return 0


def cmd_errors(args: argparse.Namespace) -> int:
    _setup_django()
    _schema_ready()
    from renkei.connectors.error_report import error_report_lines
    from renkei.edudata.models import ImportRun
    from renkei.tenants.context import in_tenant

    with in_tenant(args.tenant):
        run = ImportRun.objects.filter(pk=args.run).first()
        if run is None:
            print(f"エラー: 取り込み #{args.run} はありません。", file=sys.stderr)
            return 2
        for line in error_report_lines(run):
            sys.stdout.write(line)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from renkei.tenants.codes import CodeError, validate_municipality_code

    try:
        validate_municipality_code(args.tenant)
    except CodeError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    _setup_django()
    from renkei.demo import synth

    try:
        summary = synth.generate(
            args.tenant,
            Path(args.out),
            students=args.students,
            days=args.days,
            seed=args.seed,
            past_years=args.past_years,
        )
    except ValueError as e:  # an unsupported year or a negative count
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _setup_django()
    _schema_ready()
    from django.conf import settings
    from django.core.management import call_command

    from renkei.connectors import jobs

    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: this process runs the queued imports
        jobs.start_embedded_worker()

    call_command("runserver", f"127.0.0.1:{args.port}", use_reloader=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.demo import seed

    seed.prepare(verbosity=args.verbosity)
    seed.print_welcome(port=args.port)
    if args.no_serve:
        return 0
    return cmd_serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="renkei", description="Renkei 連携 — 学校教育データの連携基盤"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="デモ環境を用意して起動する")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-serve", action="store_true", help="用意だけしてサーバーは起動しない")
    p.add_argument("-v", "--verbosity", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("onboard", help="自治体をテナントとして登録する")
    p.add_argument("--code", required=True, help="全国地方公共団体コード（6 桁、例: 131130）")
    p.add_argument("--name", required=True, help="自治体名（例: 渋谷区）")
    p.add_argument("--prefecture", help="都道府県コード（01〜47、省略時は自治体コードから）")
    p.set_defaults(func=cmd_onboard)

    p = sub.add_parser("tenants", help="登録済みの自治体を一覧する")
    p.set_defaults(func=cmd_tenants)

    p = sub.add_parser("migrate", help="public と全テナントのスキーマを更新する")
    p.add_argument("-v", "--verbosity", type=int, default=1)
    p.add_argument("--workers", type=int, help="テナントを同時に更新する接続の数（既定 4）")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("purge", help="保存期間を過ぎた児童生徒のデータを削除する")
    p.add_argument("--dry-run", action="store_true", help="件数を数えるだけで削除しない")
    p.add_argument("--tenant", help="自治体コード（省略時は全自治体）")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("connectors", help="インストール済みのコネクタを一覧する")
    p.set_defaults(func=cmd_connectors)

    p = sub.add_parser("import", help="コネクタでデータを取り込む")
    p.add_argument("connector", help="コネクタ名（renkei connectors で一覧）")
    p.add_argument("--tenant", required=True, help="自治体コード")
    p.add_argument("--config", help="コネクタの設定ファイル（YAML または JSON）")
    p.add_argument("paths", nargs="*", help="取り込むファイルまたはディレクトリ")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("errors", help="取り込みで除外した行を CSV で出力する")
    p.add_argument("--tenant", required=True)
    p.add_argument("run", type=int, help="取り込みの番号")
    p.set_defaults(func=cmd_errors)

    p = sub.add_parser("synth", help="合成データ（各コネクタの形式）を書き出す")
    p.add_argument("--tenant", required=True, help="自治体コード")
    p.add_argument("--students", type=int, default=600)
    p.add_argument("--days", type=int, default=200)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--past-years",
        type=int,
        default=0,
        help="その前の年度も書き出す年数（past/<年度>/ に C4th・スズキ校務の形式で）",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("serve", help="http://127.0.0.1:PORT で起動する")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check", help="設定を検査する（--deploy: 本番向けの項目も）")
    p.add_argument("--deploy", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("manage", help="Django の管理コマンドを実行する", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse gives `nargs="*"` nothing when the paths follow an option
    # (`renkei import c4th --tenant 131130 a.csv`): take them here.
    if extra and args.command == "import" and not any(e.startswith("-") for e in extra):
        args.paths = [*args.paths, *extra]
    elif extra and args.command != "manage":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from django.db import DatabaseError

    try:
        return args.func(args)
    except DatabaseError as e:
        if not isinstance(
            e.__cause__, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn
        ):
            raise
        detail = str(e).splitlines()[0]
        print(
            f"エラー: データベースのスキーマが作られていないか、この版の Renkei より古いです（{detail}）。"
            "`renkei migrate` を実行してください。",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
