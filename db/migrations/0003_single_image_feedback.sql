-- The single-image buttons (Vary (Subtle), Vary (Strong), Upscale 2×) get kinds of their
-- own: they are weak positives for one image shown alone, while a grid's V pick implies
-- pairs against the other three images (flywheel/pairs.py).
ALTER TABLE feedback_events DROP CONSTRAINT feedback_events_kind_is_known;
ALTER TABLE feedback_events ADD CONSTRAINT feedback_events_kind_is_known CHECK (kind IN (
    'upscale_pick', 'variation_pick', 'reroll', 'thumbs_up', 'thumbs_down', 'favourite',
    'vote', 'vary_subtle', 'vary_strong', 'upscale_2x'));

-- A pick's implied pairs are written once, with the event that implies them.
CREATE UNIQUE INDEX comparisons_implied_once ON comparisons
    (feedback_event_id, image_a_id, image_b_id) WHERE source <> 'explicit';
