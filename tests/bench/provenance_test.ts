import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { provenance } from "../../bench/results.ts";

describe("provenance", () => {
  it("reads the commit from git, or takes LAB_GIT_COMMIT over a possibly stale .git", async () => {
    const before = Deno.env.get("LAB_GIT_COMMIT");
    try {
      Deno.env.delete("LAB_GIT_COMMIT");
      const fromGit = await provenance([], []);
      assert.equal(fromGit.git.source, "git");
      assert.match(fromGit.git.commit, /^[0-9a-f]{40}$/);
      Deno.env.set("LAB_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567");
      const named = await provenance([], []);
      assert.deepEqual(named.git, {
        commit: "0123456789abcdef0123456789abcdef01234567",
        dirty: false,
        source: "LAB_GIT_COMMIT",
      });
    } finally {
      if (before === undefined) Deno.env.delete("LAB_GIT_COMMIT");
      else Deno.env.set("LAB_GIT_COMMIT", before);
    }
  });
});
