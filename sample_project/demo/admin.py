from django.contrib import admin

from stream_analysis.admin import BaseTimeFrameAdmin

from .models import DemoAggregateFrame, DemoTimeFrame, Tweet


@admin.register(Tweet)
class TweetAdmin(admin.ModelAdmin):
    list_display = ["created_at", "text"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]


@admin.register(DemoTimeFrame)
class DemoTimeFrameAdmin(BaseTimeFrameAdmin):
    list_display = [*BaseTimeFrameAdmin.list_display, "item_count"]


@admin.register(DemoAggregateFrame)
class DemoAggregateFrameAdmin(BaseTimeFrameAdmin):
    list_display = [*BaseTimeFrameAdmin.list_display, "tweet_count", "average_length"]
