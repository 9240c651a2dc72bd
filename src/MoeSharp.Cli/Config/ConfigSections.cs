namespace MoeSharp.Cli.Config;

/// <summary>
/// The sections of a <c>--config</c> job file, after torchtitan's job configs (docs/config.md): which options each
/// generic section may set. A key is an option's long name with <c>_</c> or <c>-</c> between words
/// (<c>top_k</c> = <c>--top-k</c>). Sections named after a command (<c>[run]</c>, <c>[train]</c>, <c>[bench]</c>)
/// take any option of that command and apply only to it.
/// </summary>
internal static class ConfigSections
{
    /// <summary>Generic sections: section → the options (long names) it may set.</summary>
    public static IReadOnlyDictionary<string, IReadOnlySet<string>> Generic { get; } =
        new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal)
        {
            ["job"] = new HashSet<string> { "seed", "description" },
            ["model"] = new HashSet<string> { "dim", "hidden", "experts", "top-k", "shared-hidden" },
            ["moe"] = new HashSet<string>
            {
                "score-func",
                "route-norm",
                "route-scale",
                "expert-groups",
                "limited-groups",
                "score-before-experts",
                "score",
                "bias-update-coeff",
                "align",
            },
            ["parallelism"] = new HashSet<string> { "world", "sp", "layout", "sharding", "comm", "device", "gpus" },
            ["training"] = new HashSet<string> { "steps", "tokens", "dtype", "gemm-dtype", "timeout", "batch" },
            ["optimizer"] = new HashSet<string> { "lr" },
            ["checkpoint"] = new HashSet<string> { "save", "load" },
            ["metrics"] = new HashSet<string> { "metrics", "log-every", "plot", "profile" },
        };

    /// <summary>Keys that describe the job and set no option (torchtitan's <c>job.description</c>).</summary>
    public static bool IsDescriptive(string option) => option == "description";
}
