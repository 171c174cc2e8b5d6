-- /rate: every pair shown to a member to vote on, with where each image was (left = A,
-- right = B) and, once they vote, their answer. A vote on a real pair also becomes an
-- explicit comparison; a control pair (one image made for an unrelated prompt, the decoy)
-- never does: it only measures how carefully the member votes.
CREATE TABLE rate_pairs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id       bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    left_image_id   bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    right_image_id  bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    prompt          text NOT NULL,  -- the prompt shown with the pair
    decoy_image_id  bigint REFERENCES images (id) ON DELETE CASCADE,  -- NULL: a real pair
    shown_at        timestamptz NOT NULL DEFAULT now(),
    label           text,  -- a (left), b (right), tie or both_bad; NULL until they vote
    voted_at        timestamptz,
    CONSTRAINT rate_pairs_two_different_images CHECK (left_image_id <> right_image_id),
    CONSTRAINT rate_pairs_decoy_is_one_of_the_two
        CHECK (decoy_image_id IS NULL OR decoy_image_id IN (left_image_id, right_image_id)),
    CONSTRAINT rate_pairs_label_is_a_b_tie_or_both_bad
        CHECK (label IN ('a', 'b', 'tie', 'both_bad')),
    CONSTRAINT rate_pairs_voted_with_a_label CHECK ((label IS NULL) = (voted_at IS NULL)),
    CONSTRAINT rate_pairs_voted_after_shown CHECK (voted_at >= shown_at)
);

CREATE INDEX rate_pairs_by_member ON rate_pairs (member_id, id);
-- One answer per member and control pair, whichever side each image was shown on (a real
-- pair's one vote is comparisons_one_vote_per_member_and_pair).
CREATE UNIQUE INDEX rate_pairs_one_control_answer ON rate_pairs
    (member_id, least(left_image_id, right_image_id), greatest(left_image_id, right_image_id))
    WHERE decoy_image_id IS NOT NULL AND label IS NOT NULL;

-- A member's reliability is their control accuracy: the share of control pairs where they
-- picked the image made for the prompt (a tie or "both bad" misses it). They are unreliable
-- after at least 5 controls with fewer than 60% passed: a careful voter (90% accurate) is
-- marked so about once in a hundred, a member clicking A or B at random half the time by
-- their 5th control and ever more surely after. Their votes are kept, and left out of
-- ratings and exports unless asked for. Change the rule with a migration that replaces
-- this view.
CREATE VIEW member_reliability AS
SELECT member_id, controls, passed, passed::float8 / controls AS reliability,
       controls >= 5 AND passed < 0.6 * controls AS unreliable
FROM (SELECT member_id, count(*) AS controls,
             -- passed: they picked the other image than the decoy
             count(*) FILTER (WHERE decoy_image_id = CASE label WHEN 'a' THEN right_image_id
                                                                WHEN 'b' THEN left_image_id
                                                     END) AS passed
      FROM rate_pairs
      WHERE decoy_image_id IS NOT NULL AND label IS NOT NULL
      GROUP BY member_id) AS answers;

-- The comparisons that count in ratings and agreement: all but unreliable members' votes.
CREATE VIEW counted_comparisons AS
SELECT c.*
FROM comparisons AS c
LEFT JOIN member_reliability AS r ON r.member_id = c.member_id
WHERE c.source <> 'explicit' OR NOT coalesce(r.unreliable, false);

-- What /rate may show: the finished text-to-image jobs (an image prompt or a parent image
-- would make two images of one prompt unequal). Read newest first by id, so a query takes
-- the recent ones through the primary key without reading the rest.
CREATE VIEW rateable_jobs AS
SELECT id, request->>'prompt' AS prompt, model_version_id AS version_id, member_id
FROM jobs
WHERE kind IN ('imagine', 'reroll') AND status = 'succeeded'
  AND request->>'parent_image' IS NULL;
-- /rate reads the newest of them: this keeps that a short walk at any size of history.
CREATE INDEX jobs_rateable_newest ON jobs (id DESC)
    WHERE kind IN ('imagine', 'reroll') AND status = 'succeeded'
      AND request->>'parent_image' IS NULL;
