from django.contrib import admin

from stream_analysis.admin import BaseTimeFrameAdmin

from .models import CountFrame, FragileSqlFrame

admin.site.register(CountFrame, BaseTimeFrameAdmin)
admin.site.register(FragileSqlFrame, BaseTimeFrameAdmin)
