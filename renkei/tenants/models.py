"""Public schema: prefectures, municipalities (the tenants) and their domains."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from renkei.tenants.codes import (
    PREFECTURES,
    CodeError,
    schema_name_for,
    validate_municipality_code,
    validate_prefecture_code,
)

MIN_CELL_SIZE_FLOOR = 10


def _validation_error(check, value) -> None:
    try:
        check(value)
    except CodeError as e:
        raise ValidationError(str(e)) from e


def prefecture_code_validator(value: str) -> None:
    _validation_error(validate_prefecture_code, value)


def municipality_code_validator(value: str) -> None:
    _validation_error(validate_municipality_code, value)


class Prefecture(models.Model):
    code = models.CharField(
        "都道府県コード", max_length=2, primary_key=True, validators=[prefecture_code_validator]
    )
    name = models.CharField("名称", max_length=10)

    class Meta:
        verbose_name = "都道府県"
        verbose_name_plural = "都道府県"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @classmethod
    def for_code(cls, code: str) -> Prefecture:
        validate_prefecture_code(code)
        prefecture, _ = cls.objects.get_or_create(code=code, defaults={"name": PREFECTURES[code]})
        return prefecture


class Municipality(TenantMixin):
    """A municipality (自治体) and its schema ``m<code>``."""

    code = models.CharField(
        "全国地方公共団体コード",
        max_length=6,
        unique=True,
        validators=[municipality_code_validator],
    )
    name = models.CharField("名称", max_length=50)
    prefecture = models.ForeignKey(
        Prefecture, on_delete=models.PROTECT, related_name="municipalities"
    )
    created_at = models.DateTimeField("登録日時", auto_now_add=True)

    # Tenant settings.
    min_cell_size = models.PositiveSmallIntegerField(
        "最小セルサイズ k",
        default=MIN_CELL_SIZE_FLOOR,
        help_text="公開する集計の各セルに必要な最少人数。10 以上で、引き上げのみ可能。",
    )
    retention_years = models.PositiveSmallIntegerField(
        "離籍後の保存年数", default=5, help_text="指導要録（様式2）に合わせ既定は 5 年。"
    )
    alert_consecutive_absence_days = models.PositiveSmallIntegerField(
        "連続欠席アラート（日）", default=3
    )
    alert_monthly_absence_days = models.PositiveSmallIntegerField(
        "月間欠席アラート（日）", default=10
    )
    alert_yearly_absence_days = models.PositiveSmallIntegerField(
        "年間欠席アラート（日）", default=30
    )

    # The tenant's pseudonymization key, encrypted with the master key (renkei.platform.keys).
    pseudonym_key = models.TextField(editable=False)

    # Changed (to a random value) whenever the tenant's rollups change
    # (renkei.edudata.rollups): the released tables of its prefecture are keyed by the
    # versions of every municipality in it.
    data_version = models.PositiveBigIntegerField(default=0, editable=False)

    # The schema is created by do_onboard_municipality (renkei.tenants.schema), not on save.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        verbose_name = "自治体"
        verbose_name_plural = "自治体"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_cell_size__gte=MIN_CELL_SIZE_FLOOR),
                name="municipality_min_cell_size_at_least_10",
            ),
            models.CheckConstraint(
                condition=models.Q(retention_years__gte=1),
                name="municipality_retention_at_least_1_year",
            ),
            models.CheckConstraint(
                condition=models.Q(schema_name=models.functions.Concat(models.Value("m"), "code")),
                name="municipality_schema_name_from_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        if self.code and self.prefecture_id and self.code[:2] != self.prefecture_id:
            raise ValidationError(
                f"自治体コード {self.code} は都道府県コード {self.code[:2]} に属します"
                f"（指定された都道府県は {self.prefecture_id}）。"
            )
        if self.pk:
            previous = (
                type(self)
                .objects.filter(pk=self.pk)
                .values_list("min_cell_size", flat=True)
                .first()
            )
            if previous is not None and self.min_cell_size < previous:
                raise ValidationError(
                    f"最小セルサイズ k は引き上げのみ可能です（現在 {previous}、指定 {self.min_cell_size}）。"
                )

    def save(self, *args, **kwargs) -> None:
        # The schema name is derived from the validated code and nothing else.
        self.schema_name = schema_name_for(self.code)
        self.clean()
        super().save(*args, **kwargs)


class Domain(DomainMixin):
    class Meta:
        verbose_name = "ドメイン"
        verbose_name_plural = "ドメイン"


class Release(models.Model):
    """A released (disclosure-controlled) table of one prefecture, as every entry point
    serves it: computed once per data version by renkei.edudata.metrics and stored so that
    every process answers the same cells without protecting the table again.

    ``cells`` holds released figures only: a withheld cell is stored without its value, so
    nothing here is finer than what any analyst may see. ``version`` is a digest of the
    data versions and k of the prefecture's municipalities; a change in any of them makes a
    new row, or moves the row to the new version when the table's inputs did not change
    (old rows are removed when the new one is stored, except ``closed`` ones: a release of
    a school year every municipality of the prefecture has closed is kept as it is, so last
    year's evidence can be reproduced).
    """

    prefecture = models.ForeignKey(Prefecture, on_delete=models.CASCADE, related_name="releases")
    table = models.CharField(max_length=100)
    school_year = models.PositiveSmallIntegerField()
    version = models.CharField(max_length=64)
    cells = models.JSONField()
    primary_cells = models.PositiveIntegerField(
        help_text="セル数のうち k 人未満（秘匿が必須）のもの"
    )
    withheld_cells = models.PositiveIntegerField(help_text="秘匿したセルの数（補完秘匿を含む）")
    total_cells = models.PositiveIntegerField()
    # A release made from the same inputs as the previous one is that one, not protected
    # again (renkei.edudata.metrics.release.protect).
    inputs = models.CharField(max_length=64, blank=True, help_text="保護した入力のダイジェスト")
    closed = models.BooleanField(default=False, help_text="締めた年度の公開表（削除しない）")
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "公開表"
        verbose_name_plural = "公開表"
        constraints = [
            models.UniqueConstraint(
                fields=["prefecture", "table", "school_year", "version"], name="release_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefecture_id} {self.table} {self.school_year}"


class ClosedSchoolYear(models.Model):
    """A school year (April to March) a municipality has closed: its released figures are
    final. Closing keeps the de-identified counts the year's tables are made of in the
    tenant (``edudata.FrozenCounts``), and every release of the year is made from those
    from then on, so a purge, a late opt-out, a re-import or a correction changes none of
    its figures (renkei.edudata.history, docs/disclosure.md)."""

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="closed_school_years"
    )
    school_year = models.PositiveSmallIntegerField("年度")
    closed_at = models.DateTimeField("締めた日時", auto_now_add=True)
    automatic = models.BooleanField("期限による自動の締め", default=False)

    class Meta:
        verbose_name = "締めた年度"
        verbose_name_plural = "締めた年度"
        ordering = ["municipality", "school_year"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "school_year"], name="school_year_closed_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.municipality_id} {self.school_year}"


class Revision(models.Model):
    """A municipality's figures of an open school year changed after its tables had been
    released: which municipality, which year, on which day and through what kind of change.
    Nothing personal and no count: the released figures themselves are versioned
    (``Release``); this tells a prefecture analyst that, and when, they were revised."""

    class Kind(models.TextChoices):
        IMPORT = "import", "データの取込"
        OPT_OUT = "opt_out", "分析除外の申出"
        OPT_OUT_WITHDRAWAL = "opt_out_withdrawal", "分析除外の取下げ"
        PURGE = "purge", "保存期間経過による削除"
        CORRECTION = "correction", "訂正・再集計"

    municipality = models.ForeignKey(
        Municipality, on_delete=models.CASCADE, related_name="revisions"
    )
    school_year = models.PositiveSmallIntegerField("年度")
    kind = models.CharField("変更の種類", max_length=20, choices=Kind.choices)
    revised_on = models.DateField("改訂日")

    class Meta:
        verbose_name = "改訂履歴"
        verbose_name_plural = "改訂履歴"
        ordering = ["-revised_on", "municipality", "school_year", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "school_year", "kind", "revised_on"],
                name="revision_once_a_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.municipality_id} {self.school_year} {self.kind} {self.revised_on}"
