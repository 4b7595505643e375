# A release made from the same inputs as the previous one is that release, not protected
# again: the digest of its inputs is kept with it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0005_retention_from_leaving'),
    ]

    operations = [
        migrations.AddField(
            model_name='release',
            name='inputs',
            field=models.CharField(blank=True, default='', help_text='保護した入力のダイジェスト', max_length=64),
            preserve_default=False,
        ),
    ]
