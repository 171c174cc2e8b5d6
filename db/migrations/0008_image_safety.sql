-- The image classifier's verdict on each image (generation/safety.py): whether it was
-- flagged, and the label → score of each detection that made it so. The bot applies the
-- server's image policy from these at every post (bot/image_policy.py). Images made before
-- this migration were never classified: not flagged.
ALTER TABLE images
    ADD COLUMN flagged boolean NOT NULL DEFAULT false,
    ADD COLUMN safety_labels jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT images_safety_labels_is_an_object CHECK (jsonb_typeof(safety_labels) = 'object');
