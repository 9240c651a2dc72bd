namespace MoeSharp.Cli.Commands;

/// <summary>The problem <c>moe bench</c> times: a preset's shape, or the shape options.</summary>
/// <param name="Name">Preset name, or <c>custom</c>.</param>
/// <param name="Tokens">Tokens per rank.</param>
/// <param name="Dim">D.</param>
/// <param name="Experts">E.</param>
/// <param name="TopK">K.</param>
internal sealed record BenchShape(string Name, int Tokens, int Dim, int Experts, int TopK)
{
    /// <summary>The shape the settings ask for.</summary>
    /// <exception cref="ArgumentException">An unknown preset.</exception>
    public static BenchShape Resolve(BenchSettings s) => s.Preset switch
    {
        null => new BenchShape("custom", s.Tokens, s.Dim, s.Experts, s.TopK),
        // DeepSeek-V3-like and Qwen3-MoE-like, as the GPU issue and bench/reference define them.
        "deepseek" => new BenchShape("deepseek", 4096, 7168, 256, 8),
        "qwen3" => new BenchShape("qwen3", 8192, 2048, 128, 8),
        _ => throw new ArgumentException($"--preset '{s.Preset}' is not deepseek or qwen3"),
    };
}
