"""The prefecture federation: an Apollo Federation v2 subgraph (strawberry).

``Prefecture`` and ``Municipality`` are entities keyed by ``code``; each has one field per
metric that may leave a municipality (``metrics.PREFECTURE_WIDE_METRICS``: not the
MUNICIPALITY_ONLY ones such as 不登校), generated from the registry, whose
arguments are exactly the breakdowns the metric allows (``byMonth``, ``byGrade``, and at the
prefecture level ``byMunicipality``). A metric answers with a ``MetricResult``: released cells
only (a withheld cell has ``value: null`` and a reason, never 0) and the status of every
municipality asked. A cell's ``key`` lists its codes in the order of ``dimensions``; the
labels of the codes come once per table (``labels``), which keeps a 60-municipality answer
of thousands of cells cheap to serialise.

No type in this schema can hold a single pupil: the object types are the two entities, the
metric catalogue and the released tables (``MetricResult``, ``MetricCell``, ``CodeLabel``,
``MunicipalityAnswer``); their fields are codes, labels and counts of at least *k* pupils.
A test walks the schema to keep it that way.

Limits: query depth (``settings.GRAPHQL_MAX_DEPTH``), tokens, aliases and the number of
metric fields per request; introspection only with ``DEBUG`` (``_service { sdl }`` always
works, which is what federation routers use); errors are masked except the ones written for
the caller (:class:`~renkei.graphql.federation.auth.FederationError`) and GraphQL validation
errors. Extensions are passed as factories, so every request gets fresh instances.
"""

from __future__ import annotations

import enum
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import strawberry
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.federation.schema import FederationAny
from strawberry.permission import BasePermission

from renkei.accounts import policy
from renkei.edudata import history, metrics
from renkei.edudata.metrics import (
    GRADE,
    MONTH,
    MUNICIPALITY,
    PREFECTURE_WIDE_METRICS,
    TOTAL,
    Metric,
    release,
)
from renkei.edudata.models import OutOfCalendar, check_school_year
from renkei.graphql import edge
from renkei.graphql.federation import auth, fanout
from renkei.graphql.plain_lists import PlainListExecutionContext
from renkei.platform import errors
from renkei.tenants.codes import PREFECTURES, CodeError, validate_municipality_code

MAX_METRIC_FIELDS_PER_REQUEST = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20


# -- context ----------------------------------------------------------------------------------


@dataclass
class FederationContext:
    """Per request: who asks, and the answers already fetched (so that two aliases of the
    same question fan out once). Never shared between requests."""

    principal: policy.Principal
    auth_error: str | None = None
    request: Any = None
    response: Any = None
    fanouts: int = 0
    _answers: dict[tuple, fanout.FederatedTable] = field(default_factory=dict)
    # The data versions of the prefectures this answer was made of (see ResultCache), and
    # whether it may be kept at all (not with a remote or a missing municipality in it).
    versions: dict[str, str] = field(default_factory=dict)
    cacheable: bool = True
    _targets: dict[str, fanout.Target | None] = field(default_factory=dict)

    def municipality_target(self, code: str) -> fanout.Target | None:
        """``fanout.municipality_target``, once per code and request: the entity, its
        permission check and its metric fields all need it."""
        if code not in self._targets:
            self._targets[code] = fanout.municipality_target(code)
        return self._targets[code]

    def touch(self, prefecture_code: str) -> str:
        """Note that the answer depends on this prefecture's data; its version now."""
        version = release.scope_for(prefecture_code).version
        if self.versions.setdefault(prefecture_code, version) != version:
            self.cacheable = False  # the data changed while this answer was made
        return version

    def federated(
        self,
        targets: list[fanout.Target],
        prefecture_code: str,
        spec: Metric,
        school_year: int,
        breakdown: tuple[str, ...],
        scope: str,
    ) -> fanout.FederatedTable:
        key = (scope, spec.name, school_year, breakdown)
        if key not in self._answers:
            self.fanouts += 1
            if self.fanouts > MAX_METRIC_FIELDS_PER_REQUEST:
                raise auth.FederationError(
                    gettext("1 回の照会で使える指標は %(limit)s 個までです。照会を分けてください。")
                    % {"limit": MAX_METRIC_FIELDS_PER_REQUEST},
                    code="QUERY_TOO_COSTLY",
                )
            inner = tuple(d for d in breakdown if d != MUNICIPALITY)
            before = self.touch(prefecture_code)
            answers, local_part = fanout.gather(
                targets, spec.name, school_year, inner, prefecture_code=prefecture_code
            )
            if before != release.scope_for(prefecture_code).version or any(
                a.target.remote or a.status in (fanout.FAILED, fanout.TIMEOUT) for a in answers
            ):
                self.cacheable = False
            if not scope.startswith("prefecture:"):  # one municipality: its own table
                local_part = next((a.table for a in answers if a.target.joint), None)
            self._answers[key] = fanout.FederatedTable.of(
                spec, school_year, breakdown, answers, local_part
            )
        return self._answers[key]


def _context(info: strawberry.Info) -> FederationContext:
    context = info.context
    if not isinstance(context, FederationContext):
        raise auth.FederationAuthenticationError(str(auth.NOT_SIGNED_IN))
    return context


# -- who may use each field (declared on the fields; the checks are renkei.graphql.federation.auth)


class PrefectureAnalyst(BasePermission):
    """Prefecture analysts only: the federation is their instrument."""

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context = _context(info)
        auth.require_analyst(context.principal, context.auth_error)
        return True


class AnalystOfThisPrefecture(BasePermission):
    """An analyst of the prefecture the field belongs to (the entity being resolved)."""

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context = _context(info)
        auth.require_prefecture(context.principal, source.code, context.auth_error)
        return True


class AnalystOfThisMunicipality(BasePermission):
    """An analyst of the municipality's prefecture whom the policy lets see its aggregates.
    A municipality not known here is an error about the question, not a refusal."""

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context = _context(info)
        target = context.municipality_target(source.code)
        if target is None:
            raise auth.FederationError(_unknown_municipality(source.code))
        auth.require_municipality(context.principal, target, context.auth_error)
        return True


# -- released tables ------------------------------------------------------------------------


@strawberry.enum(description="市区町村の応答状況")
class AnswerStatus(enum.Enum):
    OK = "ok"
    NO_DATA = "no_data"
    FAILED = "failed"
    TIMEOUT = "timeout"


@strawberry.type(description="次元のコードとその表示名（例: grade の B1-3 = 小学校 3年）")
class CodeLabel:
    dimension: str
    code: str = strawberry.field(description="コード。__total__ はその次元の計")
    label: str = strawberry.field(description="表示名（日本語）")
    label_en: str = strawberry.field(description="表示名（英語。市区町村名は日本語のまま）")


@strawberry.type(
    description=(
        "公開されたセル。秘匿されたセルは value が null で、理由（reason）が付く（0 にはしない）。"
        "pupils は k 人以上のときだけ返る。"
    )
)
class MetricCell:
    key: list[str] = strawberry.field(
        description=(
            "セルのコード。MetricResult.dimensions と同じ順（__total__ はその次元の計）。"
            "表示名は MetricResult.labels"
        )
    )
    pupils: int | None = strawberry.field(description="対象の児童生徒数（月の値の年計は延べ人数）")
    numerator: int | None = strawberry.field(description="値の分子（公開された数）")
    denominator: int | None = strawberry.field(description="値の分母（公開された数）")
    value: float | None = strawberry.field(description="値（単位は指標の unit）。秘匿なら null")
    suppressed: bool
    reason: str | None = strawberry.field(description="秘匿・算出不可の理由")
    reason_code: str | None


@strawberry.type(description="照会した市区町村と、その応答状況")
class MunicipalityAnswer:
    code: str
    name: str
    status: AnswerStatus
    reason: str | None
    remote: bool


@strawberry.type(description="指標の定義")
class MetricDefinition:
    name: str
    label_ja: str
    label_en: str
    description_ja: str
    description_en: str
    unit: str
    dimensions: list[str] = strawberry.field(
        description="指定できる内訳（市区町村別は都道府県のみ）"
    )
    categories: list[str] = strawberry.field(description="常に含まれる指標固有の区分")
    min_cell_size: int = strawberry.field(
        description="最小セルサイズ k の下限（自治体の設定が大きければそちら）"
    )

    @classmethod
    def of(cls, spec: Metric) -> MetricDefinition:
        return cls(
            name=spec.name,
            label_ja=spec.label_ja,
            label_en=spec.label_en,
            description_ja=spec.description_ja,
            description_en=spec.description_en,
            unit=spec.unit,
            dimensions=list(spec.dimensions),
            categories=list(spec.categories),
            min_cell_size=spec.min_cell_size,
        )


@strawberry.type(description="指標の集計結果（開示制御済み）")
class MetricResult:
    metric: MetricDefinition
    school_year: int
    dimensions: list[str] = strawberry.field(
        description="セルの key の各コードの次元（順番どおり）"
    )
    labels: list[CodeLabel] = strawberry.field(description="表に現れるコードの表示名（日本語）")
    k: int = strawberry.field(
        description="適用された最小セルサイズ（市区町村ごとの k のうち最小のもの）"
    )
    complete: bool = strawberry.field(description="すべての市区町村が応答したか")
    cells: list[MetricCell]
    municipalities: list[MunicipalityAnswer]
    missing: list[MunicipalityAnswer] = strawberry.field(
        description="応答しなかった市区町村（失敗・時間切れ）。合計はそれ以外の市区町村のもの"
    )

    @classmethod
    def of(cls, table: fanout.FederatedTable) -> MetricResult:
        names = {a.target.code: a.target.name for a in table.answers}
        answers = [
            MunicipalityAnswer(
                code=a.target.code,
                name=a.target.name,
                status=AnswerStatus(a.status),
                reason=a.reason,
                remote=a.target.remote,
            )
            for a in table.answers
        ]
        cells = [
            MetricCell(
                key=list(cell.key.values()),
                pupils=cell.pupils,
                numerator=cell.numerator,
                denominator=cell.denominator,
                value=cell.value,
                suppressed=cell.suppressed,
                reason=cell.reason,
                reason_code=cell.reason_code,
            )
            for cell in table.cells
        ]
        codes = {(d, c): None for cell in table.cells for d, c in cell.key.items()}
        labels = [
            CodeLabel(
                dimension=d,
                code=c,
                label=_label(d, c, names, table.school_year),
                label_en=_label(d, c, names, table.school_year, english=True),
            )
            for d, c in codes
        ]
        return cls(
            metric=MetricDefinition.of(table.metric),
            school_year=table.school_year,
            dimensions=table.dimensions,
            labels=labels,
            k=table.k,
            complete=table.complete,
            cells=cells,
            municipalities=answers,
            missing=[a for a in answers if a.status in (AnswerStatus.FAILED, AnswerStatus.TIMEOUT)],
        )


def _label(
    dimension: str, code: str, names: dict[str, str], school_year: int, english: bool = False
) -> str:
    if dimension == MUNICIPALITY and code != TOTAL:
        return names.get(code, code)  # a name, the same in both languages
    return (metrics.code_label_en if english else metrics.code_label)(dimension, code, school_year)


# -- entities ---------------------------------------------------------------------------------


def _breakdown(
    *, by_month: bool = False, by_grade: bool = False, by_municipality: bool = False
) -> tuple[str, ...]:
    chosen = ((MONTH, by_month), (GRADE, by_grade), (MUNICIPALITY, by_municipality))
    return tuple(d for d, on in chosen if on)


def _check_year(school_year: int) -> int:
    try:
        return check_school_year(school_year)
    except OutOfCalendar as e:
        raise auth.FederationError(str(e)) from None


_FLAG_ARGUMENTS = {MONTH: "by_month", GRADE: "by_grade", MUNICIPALITY: "by_municipality"}
_FLAG_HELP = {
    MONTH: "年度・月別に内訳する",
    GRADE: "学校種・学年別に内訳する",
    MUNICIPALITY: "市区町村別に内訳する",
}


def _metric_field(spec: Metric, resolve: Callable[..., MetricResult], *, prefecture: bool) -> Any:
    """A strawberry field for one metric, its arguments taken from the registry."""
    dims = [d for d in spec.dimensions if d in _FLAG_ARGUMENTS]
    if prefecture:
        dims.append(MUNICIPALITY)
    parameters = [
        inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter(
            "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
        ),
        inspect.Parameter("school_year", inspect.Parameter.KEYWORD_ONLY, annotation=int),
    ]
    parameters += [
        inspect.Parameter(
            _FLAG_ARGUMENTS[d],
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[bool, strawberry.argument(description=_FLAG_HELP[d])],
            default=False,
        )
        for d in dims
    ]

    def resolver(root, info, **arguments) -> MetricResult:
        return resolve(root, info, spec, **arguments)

    resolver.__name__ = spec.name
    resolver.__signature__ = inspect.Signature(
        parameters,  # type: ignore[attr-defined]
        return_annotation=MetricResult,
    )
    return strawberry.field(
        resolver=resolver,
        description=f"{spec.label_ja}（{spec.unit}）。{spec.description_ja}",
        permission_classes=[AnalystOfThisPrefecture if prefecture else AnalystOfThisMunicipality],
    )


class Municipality:
    """A municipality (市区町村): a tenant here, or a remote deployment."""

    code: str
    name: str
    prefecture_code: str

    @classmethod
    def resolve_reference(cls, info: strawberry.Info, code: str) -> Municipality:
        return _municipality(info, code)


class Prefecture:
    """A prefecture (都道府県) and its municipalities."""

    code: str
    name: str

    @classmethod
    def resolve_reference(cls, info: strawberry.Info, code: str) -> Prefecture:
        return _prefecture(info, code)


def _municipality(info: strawberry.Info, code: str) -> Municipality:
    """The municipality of a code, for the root field and for ``_entities`` (which has no
    field of ours to declare a permission on): the code checked, then the analyst's right."""
    context = _context(info)
    auth.require_analyst(context.principal, context.auth_error)
    try:
        validate_municipality_code(code)
    except CodeError as e:
        raise auth.FederationError(str(e)) from None
    auth.require_prefecture(context.principal, code[:2], context.auth_error)
    context.touch(code[:2])
    target = context.municipality_target(code)
    if target is None:
        raise auth.FederationError(_unknown_municipality(code))
    auth.require_municipality(context.principal, target, context.auth_error)
    return Municipality(code=target.code, name=target.name, prefecture_code=code[:2])


def _unknown_municipality(code: str) -> str:
    return gettext("自治体コード %(code)s の自治体は登録されていません。") % {"code": code}


def _prefecture(info: strawberry.Info, code: str) -> Prefecture:
    """The prefecture of a code, for the root field and for ``_entities`` (as above)."""
    context = _context(info)
    auth.require_analyst(context.principal, context.auth_error)
    if code not in PREFECTURES:
        raise auth.FederationError(
            gettext("都道府県コード「%(code)s」はありません（01〜47）。") % {"code": code[:20]}
        )
    auth.require_prefecture(context.principal, code, context.auth_error)
    context.touch(code)
    return Prefecture(code=code, name=PREFECTURES[code])


def _resolve_prefecture_metric(
    root: Prefecture, info: strawberry.Info, spec: Metric, *, school_year: int, **flags: bool
) -> MetricResult:
    context = _context(info)
    targets = fanout.prefecture_targets(root.code)
    breakdown = _breakdown(**flags)
    table = context.federated(
        targets,
        root.code,
        spec,
        _check_year(school_year),
        breakdown,
        scope=f"prefecture:{root.code}",
    )
    return MetricResult.of(table)


def _resolve_municipality_metric(
    root: Municipality, info: strawberry.Info, spec: Metric, *, school_year: int, **flags: bool
) -> MetricResult:
    context = _context(info)
    target = context.municipality_target(root.code)
    assert target is not None  # AnalystOfThisMunicipality said so
    breakdown = _breakdown(**flags)
    table = context.federated(
        [target],
        root.code[:2],
        spec,
        _check_year(school_year),
        breakdown,
        scope=f"municipality:{root.code}",
    )
    return MetricResult.of(table)


def _municipalities(root: Prefecture, info: strawberry.Info) -> list[Municipality]:
    return [
        Municipality(code=t.code, name=t.name, prefecture_code=root.code)
        for t in fanout.prefecture_targets(root.code)
    ]


for _spec in PREFECTURE_WIDE_METRICS.values():
    setattr(
        Prefecture, _spec.name, _metric_field(_spec, _resolve_prefecture_metric, prefecture=True)
    )
    setattr(
        Municipality,
        _spec.name,
        _metric_field(_spec, _resolve_municipality_metric, prefecture=False),
    )


@strawberry.type(
    description=(
        "市区町村の数値の改訂: 公開済みの年度（締めていない年度）のデータが変わった日と変更の"
        "種類。公開値は版ごとに作り直され、許容幅を超えた値だけが変わる。個人に関する情報も"
        "件数も含まない"
    )
)
class Revision:
    municipality_code: str
    municipality_name: str
    school_year: int
    kind: str = strawberry.field(
        description="変更の種類: import / opt_out / opt_out_withdrawal / purge / correction"
    )
    kind_label: str = strawberry.field(description="変更の種類の表示名（日本語）")
    revised_on: str = strawberry.field(description="改訂日（YYYY-MM-DD、日本時間）")


def _revisions(
    root: Prefecture, info: strawberry.Info, school_year: int | None = None
) -> list[Revision]:
    year = None if school_year is None else _check_year(school_year)
    return [
        Revision(
            municipality_code=r.municipality.code,
            municipality_name=r.municipality.name,
            school_year=r.school_year,
            kind=r.kind,
            kind_label=gettext(r.get_kind_display()),
            revised_on=r.revised_on.isoformat(),
        )
        for r in history.revisions(root.code, year)
    ]


def _closed_school_years(root: Municipality, info: strawberry.Info) -> list[int]:
    return history.closed_school_years(root.code)


Prefecture.revisions = strawberry.field(  # type: ignore[attr-defined]
    resolver=_revisions,
    description=(
        "この都道府県の市区町村の改訂履歴（新しい順）。schoolYear で年度を絞れる。"
        "締めた年度の数値は改訂されない"
    ),
    permission_classes=[AnalystOfThisPrefecture],
)
Municipality.closed_school_years = strawberry.field(  # type: ignore[attr-defined]
    resolver=_closed_school_years,
    description=(
        "締めた年度: その数値は締めたときの集計から作られ、削除・分析除外・再取込で変わらない"
    ),
    permission_classes=[AnalystOfThisMunicipality],
)
Prefecture.municipalities = strawberry.field(  # type: ignore[attr-defined]
    resolver=_municipalities,
    description="この都道府県の市区町村（連携先を含む）",
    permission_classes=[AnalystOfThisPrefecture],
)

Municipality = strawberry.federation.type(  # type: ignore[misc]
    keys=["code"], description="市区町村（自治体）。集計は開示制御済みの表のみ"
)(Municipality)
Prefecture = strawberry.federation.type(  # type: ignore[misc]
    keys=["code"], description="都道府県。集計は市区町村の公開された表の合計のみ"
)(Prefecture)


@strawberry.type
class Query:
    @strawberry.field(description="都道府県（所属する都道府県のみ）")
    def prefecture(self, info: strawberry.Info, code: str) -> Prefecture | None:
        return _prefecture(info, code)

    @strawberry.field(description="市区町村（所属する都道府県の市区町村のみ）")
    def municipality(self, info: strawberry.Info, code: str) -> Municipality | None:
        return _municipality(info, code)

    @strawberry.field(description="指標の一覧", permission_classes=[PrefectureAnalyst])
    def metrics(self, info: strawberry.Info) -> list[MetricDefinition]:
        return [MetricDefinition.of(spec) for spec in PREFECTURE_WIDE_METRICS.values()]


# -- schema -----------------------------------------------------------------------------------


class _NoExtension(SchemaExtension):
    """Stands in for an extension that is off for this request."""


class ResultCache(SchemaExtension):
    """The same question from the same analyst, answered again from memory while the data
    of every prefecture it was made of is unchanged.

    Releases are fixed per data version, so such an answer is the same cell for cell;
    what is kept is what this analyst was given (the key holds the question, its variables,
    the analyst's grants and the language). Only complete answers made of local
    municipalities are kept, never one with an error, a remote or a missing municipality.
    Checking costs one query per prefecture; a 180-municipality answer of 13,000 cells
    costs far more to build.
    """

    SIZE = 256
    _kept: OrderedDict[tuple, tuple[dict[str, str], Any]] = OrderedDict()
    _lock = threading.Lock()

    def on_execute(self):
        execution = self.execution_context
        context = execution.context
        key = self._key(execution) if isinstance(context, FederationContext) else None
        hit = None
        if key is not None:
            with self._lock:
                hit = self._kept.get(key)
            if hit is not None and all(
                release.scope_for(code).version == version for code, version in hit[0].items()
            ):
                execution.result = hit[1]
                yield
                return
        yield
        result = execution.result
        if (
            key is not None
            and result is not None
            and not result.errors
            and context.cacheable
            and context.versions
        ):
            with self._lock:
                self._kept[key] = (dict(context.versions), result)
                self._kept.move_to_end(key)
                while len(self._kept) > self.SIZE:
                    self._kept.popitem(last=False)

    @staticmethod
    def _key(execution) -> tuple | None:
        context = execution.context
        try:
            variables = json.dumps(execution.variables or {}, sort_keys=True)
        except (TypeError, ValueError):
            return None
        return (
            execution.query,
            execution.operation_name,
            variables,
            repr(context.principal),
            context.auth_error,
            translation.get_language(),
            settings.DEBUG,
        )

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._kept.clear()


def _introspection_guard() -> SchemaExtension:
    """Introspection only with DEBUG on (read per request, so tests can flip it)."""
    return _NoExtension() if settings.DEBUG else DisableIntrospection()


MASKED_MESSAGE = "内部エラーが発生しました。時間をおいて再度お試しください。"


def should_mask_error(error: GraphQLError) -> bool:
    """Mask everything but messages written for the caller, GraphQL's own validation and
    errors about the request itself (variable values, which have no path)."""
    original = error.original_error
    if original is None or edge.is_bad_variable(error):
        return False  # about the query or its variables, not our internals
    if errors.is_unavailable(original):
        return False  # kept for error_code; its message is replaced (views._format_error)
    return not isinstance(original, auth.FederationError)


def error_code(error: GraphQLError) -> str:
    """The stable ``extensions.code`` of an error of this subgraph."""
    original = error.original_error
    if isinstance(original, auth.FederationError):
        return original.code
    if errors.is_unavailable(original):
        return edge.UNAVAILABLE
    if (error.extensions or {}).get("code"):
        return error.extensions["code"]
    if edge.is_bad_variable(error):
        return "BAD_USER_INPUT"
    if original is None and error.path is None and error.message != MASKED_MESSAGE:
        return "GRAPHQL_VALIDATION_FAILED"
    return "INTERNAL_SERVER_ERROR"  # MaskErrors' stand-in (it drops the original) included


ENTITY_TYPES = {"Prefecture", "Municipality"}
BAD_REPRESENTATION = (
    "_entities の representations は "
    '{"__typename": "Prefecture" または "Municipality", "code": "コード（文字列）"} '
    "の形で指定してください。"
)


class FederationSchema(strawberry.federation.Schema):
    """strawberry's federation schema, with checked ``_entities`` representations and one log
    line per error (a refusal at INFO with its code; the cause of anything unexpected)."""

    def entities_resolver(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[Any]:
        checked, results = [], []
        for representation in representations:
            if (
                isinstance(representation, dict)
                and representation.keys() == {"__typename", "code"}
                and representation["__typename"] in ENTITY_TYPES
                and isinstance(representation["code"], str)
            ):
                checked.append(dict(representation))
                results.append(None)
            else:
                results.append(auth.FederationError(BAD_REPRESENTATION))
        resolved = iter(super().entities_resolver(info, checked))
        return [next(resolved) if r is None else r for r in results]

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        for error in errors:
            code = error_code(error)
            edge.log_graphql_error(
                error, code, expected=code != "INTERNAL_SERVER_ERROR", where="the federation"
            )


schema = FederationSchema(
    query=Query,
    types=[Prefecture, Municipality],
    federation_version="2.11",  # Federation v2 (strawberry 0.327 dropped enable_federation_2)
    execution_context_class=PlainListExecutionContext,  # 13,000 cells without 90,000 calls
    extensions=[
        lambda: QueryDepthLimiter(max_depth=settings.GRAPHQL_MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        _introspection_guard,
        ResultCache,
        lambda: MaskErrors(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE),
    ],
)
