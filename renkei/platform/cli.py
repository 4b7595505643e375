"""The ``renkei`` console command.

    renkei demo                       migrate, onboard the demo municipalities, serve
    renkei onboard --code C --name N  onboard one municipality
    renkei tenants                    list tenants
    renkei migrate                    migrate public, and every tenant
    renkei purge [--dry-run]          retention purge in every (or one) tenant
    renkei serve [--port N]           serve on 127.0.0.1
    renkei manage ARGS...             Django management commands, same data dir and database
"""

from __future__ import annotations

import argparse
import os
import sys


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renkei.platform.settings")
    import django

    django.setup()


def cmd_manage(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["renkei manage", *args.rest])
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.tenants.schema import migrate_all

    migrate_all(verbosity=args.verbosity)
    return 0


def cmd_onboard(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.tenants.actions import OnboardingError, do_onboard_municipality

    try:
        m = do_onboard_municipality(args.code, args.name, args.prefecture)
    except OnboardingError as e:
        print(f"エラー: {e}", file=sys.stderr)
        return 2
    print(f"登録しました: {m.code} {m.name}（{m.prefecture.name}）スキーマ {m.schema_name}")
    return 0


def cmd_tenants(args: argparse.Namespace) -> int:
    _setup_django()
    from django.utils import timezone

    from renkei.tenants.models import Municipality

    rows = [("code", "name", "prefecture", "schema", "created")]
    for m in Municipality.objects.select_related("prefecture").order_by("code"):
        created = timezone.localtime(m.created_at).strftime("%Y-%m-%d %H:%M")
        rows.append((m.code, m.name, f"{m.prefecture_id} {m.prefecture.name}", m.schema_name,
                     created))
    if len(rows) == 1:
        print("登録された自治体はありません。`renkei onboard --code 131130 --name 渋谷区` で登録します。")
        return 0
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths,
                                                                           strict=True)))
    return 0


def _width(text: str) -> int:
    """Display width in a terminal: East Asian wide characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cmd_purge(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.edudata.privacy import do_purge_expired
    from renkei.tenants.context import get_municipality, in_tenant
    from renkei.tenants.models import Municipality

    tenants = [get_municipality(args.tenant)] if args.tenant else Municipality.objects.all()
    for municipality in tenants:
        with in_tenant(municipality):
            report = do_purge_expired(municipality, dry_run=args.dry_run)
        verb = "削除予定" if args.dry_run else "削除"
        detail = ", ".join(f"{k} {v}" for k, v in report.deleted.items()) or "なし"
        print(f"{municipality.code} {municipality.name}: 卒業日 {report.cutoff} より前 — "
              f"{verb}: {detail}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import call_command

    call_command("runserver", f"127.0.0.1:{args.port}", use_reloader=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _setup_django()
    from renkei.platform import demo

    demo.prepare(verbosity=args.verbosity)
    demo.print_welcome(port=args.port)
    if args.no_serve:
        return 0
    return cmd_serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="renkei", description="Renkei 連携 — 学校教育データの連携基盤")
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
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("purge", help="保存期間を過ぎた児童生徒のデータを削除する")
    p.add_argument("--dry-run", action="store_true", help="件数を数えるだけで削除しない")
    p.add_argument("--tenant", help="自治体コード（省略時は全自治体）")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("serve", help="http://127.0.0.1:PORT で起動する")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("manage", help="Django の管理コマンドを実行する", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
