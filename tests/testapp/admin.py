from django.contrib import admin

from stream_analysis.admin import BaseTimeFrameAdmin

from .models import CountFrame, FifteenFrame, FragileSqlFrame, HourRollup, MinuteRollup

admin.site.register(CountFrame, BaseTimeFrameAdmin)
admin.site.register(FifteenFrame, BaseTimeFrameAdmin)
admin.site.register(MinuteRollup, BaseTimeFrameAdmin)
admin.site.register(HourRollup, BaseTimeFrameAdmin)
admin.site.register(FragileSqlFrame, BaseTimeFrameAdmin)
