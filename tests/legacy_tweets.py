"""The legacy client's tweets with known answers (tests/db/test_moving_from_the_original.py
and tests/workers/test_moving_from_the_original.py)."""

from __future__ import annotations

from tests.conftest import at
from tests.legacy_client.stream import Tweet

#: Tweet texts and what the thermometer must read in each: (indicator matched, feeling).
TEXTS = {
    "I feel happy today": (True, "happy"),
    "i feel SAD": (True, "sad"),
    "the sun is out": (False, None),
    "I feel a bit tired": (True, "tired"),
    "i feel nothing much": (True, None),
    "a tweet about the map": (False, None),
}
MINUTES = 5


def write_tweets(minutes: int = MINUTES) -> list[Tweet]:
    """Tweets over ``minutes`` minutes from T0 (every 15 s slot gets 1 to 4), every third
    one a retweet; one more at the end closes the last frame. Returns the tweets that
    the frames cover."""
    texts = list(TEXTS)
    tweets = []
    for slot in range(minutes * 4):
        for k in range(1 + (3 * slot + 1) % 4):
            n = len(tweets)
            tweets.append(
                Tweet(
                    created_at=at(slot * 15 + k * 3),
                    text=texts[n % len(texts)],
                    retweeted_status_id=1000 + n if n % 3 == 2 else None,
                )
            )
    Tweet.objects.bulk_create([*tweets, Tweet(created_at=at(minutes * 60), text="closing")])
    return tweets
