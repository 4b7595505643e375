"""Memberships and API tokens, moved here from renkei.platform: the tables exist already
(platform 0001-0003 made them), so only the state moves."""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenants', '0002_release_engine'),
        ('platform', '0004_memberships_to_accounts_audit_event'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ApiToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, verbose_name='名前')),
                        ('role', models.CharField(choices=[('tenant_admin', '自治体管理者'), ('teacher', '教員'), ('school_manager', '管理職'), ('board_analyst', '教育委員会（分析）'), ('prefecture_analyst', '都道府県（分析）')], max_length=32, verbose_name='役割')),
                        ('kind', models.CharField(choices=[('api', 'API'), ('widget', 'ウィジェット（指標のみ）')], default='api', max_length=8, verbose_name='種類')),
                        ('metrics', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=60), blank=True, default=list, size=None, verbose_name='読める指標（空ならすべて）')),
                        ('allowed_origins', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=200), blank=True, default=list, size=None, verbose_name='利用を許可するサイト（オリジン）')),
                        ('token_hash', models.CharField(editable=False, max_length=64, unique=True, verbose_name='トークンの SHA-256')),
                        ('prefix', models.CharField(editable=False, max_length=16, verbose_name='先頭の文字（識別用）')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('expires_at', models.DateTimeField(verbose_name='有効期限')),
                        ('revoked_at', models.DateTimeField(blank=True, null=True, verbose_name='失効日時')),
                        ('last_used_at', models.DateTimeField(blank=True, null=True, verbose_name='最終利用')),
                        ('municipality', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to='tenants.municipality')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'API トークン',
                        'verbose_name_plural': 'API トークン',
                        'db_table': 'platform_apitoken',
                        'constraints': [models.CheckConstraint(condition=models.Q(('role', 'prefecture_analyst'), _negated=True), name='api_token_not_prefecture_role'), models.CheckConstraint(condition=models.Q(('kind', 'api'), models.Q(('metrics', []), _negated=True), _connector='OR'), name='api_token_widget_names_metrics')],
                    },
                ),
                migrations.CreateModel(
                    name='Membership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('role', models.CharField(choices=[('tenant_admin', '自治体管理者'), ('teacher', '教員'), ('school_manager', '管理職'), ('board_analyst', '教育委員会（分析）'), ('prefecture_analyst', '都道府県（分析）')], max_length=32, verbose_name='役割')),
                        ('school_codes', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=13), blank=True, default=list, size=None, verbose_name='所属校（学校コード）')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('municipality', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='tenants.municipality')),
                        ('prefecture', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='tenants.prefecture')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': '所属と役割',
                        'verbose_name_plural': '所属と役割',
                        'db_table': 'platform_membership',
                        'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('municipality__isnull', True), ('prefecture__isnull', False), ('role', 'prefecture_analyst')), models.Q(models.Q(('role', 'prefecture_analyst'), _negated=True), ('municipality__isnull', False), ('prefecture__isnull', True)), _connector='OR'), name='membership_scope_matches_role'), models.CheckConstraint(condition=models.Q(('role__in', ['teacher', 'school_manager']), ('school_codes', []), _connector='OR'), name='membership_schools_only_for_school_roles'), models.UniqueConstraint(condition=models.Q(('municipality__isnull', False)), fields=('user', 'role', 'municipality'), name='membership_unique_in_municipality'), models.UniqueConstraint(condition=models.Q(('prefecture__isnull', False)), fields=('user', 'role', 'prefecture'), name='membership_unique_in_prefecture')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
