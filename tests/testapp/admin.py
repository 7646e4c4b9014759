from django.contrib import admin

from stream_analysis.admin import BaseTimeFrameAdmin

from .models import CountFrame

admin.site.register(CountFrame, BaseTimeFrameAdmin)
