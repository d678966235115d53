"""Record types at the bottom layer: checks over (pre-world, post-world, trace), their verdicts, the trace and the
trajectory an episode leaves. Scenarios, the env, agents and the evaluator all read them; they import only the world."""
