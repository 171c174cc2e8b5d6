-- Edits in Discord (issue J): Vary (Region), Zoom Out and Pan redraw part of a parent
-- image; /blend mixes 2 to 5 images through the IP-Adapter. Each is a job kind of its own.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_is_imagine_variation_upscale_or_reroll;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_is_known CHECK (kind IN (
    'imagine', 'variation', 'upscale', 'reroll', 'vary_region', 'zoom_out', 'pan', 'blend'));

ALTER TABLE jobs DROP CONSTRAINT jobs_variation_and_upscale_have_a_parent;
ALTER TABLE jobs ADD CONSTRAINT jobs_edits_have_a_parent CHECK (
    (kind IN ('variation', 'upscale', 'vary_region', 'zoom_out', 'pan'))
    = (parent_image_id IS NOT NULL));

-- An edit's lineage beyond its parent image: what the member chose, as they chose it
-- ({"region": [x, y, w, h]} in percent, {"cells": [1, 5]}, {"mask": "uploaded"},
-- {"zoom": 2.0}, {"pan": "left"}, {"style_refs": n}, …). The request holds what the
-- worker needs; this holds what the member said.
ALTER TABLE jobs ADD COLUMN edit jsonb;
ALTER TABLE jobs ADD CONSTRAINT jobs_edit_is_an_object
    CHECK (edit IS NULL OR jsonb_typeof(edit) = 'object');

-- An edit of image k is a weak positive for k, like the single-image Vary buttons.
ALTER TABLE feedback_events DROP CONSTRAINT feedback_events_kind_is_known;
ALTER TABLE feedback_events ADD CONSTRAINT feedback_events_kind_is_known CHECK (kind IN (
    'upscale_pick', 'variation_pick', 'reroll', 'thumbs_up', 'thumbs_down', 'favourite',
    'vote', 'vary_subtle', 'vary_strong', 'upscale_2x', 'vary_region', 'zoom_out', 'pan'));
