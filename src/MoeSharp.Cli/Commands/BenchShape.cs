using MoeSharp.Tensors;

namespace MoeSharp.Cli.Commands;

/// <summary>The problem <c>moe bench</c> times: a preset's shape, or the shape options.</summary>
/// <param name="Name">Preset name, or <c>custom</c>.</param>
/// <param name="Tokens">Tokens per rank.</param>
/// <param name="Dim">The model dimension D: the length of one token's row.</param>
/// <param name="Experts">The number of routed experts E.</param>
/// <param name="TopK">The number of experts K each token is routed to.</param>
internal sealed record BenchShape(string Name, int Tokens, int Dim, int Experts, int TopK, DType RowType)
{
    /// <summary>The shape the settings ask for.</summary>
    /// <exception cref="ArgumentException">An unknown preset.</exception>
    public static BenchShape Resolve(BenchSettings s)
    {
        // The presets' rows are bfloat16 (as the GPU issue and bench/reference define them) unless --dtype says
        // otherwise.
        DType rowType = ParseRowType(s.DType) ?? (s.Preset is null ? DType.Float32 : DType.BFloat16);
        return s.Preset switch
        {
            null => new BenchShape("custom", s.Tokens, s.Dim, s.Experts, s.TopK, rowType),
            // DeepSeek-V3-like and Qwen3-MoE-like.
            "deepseek" => new BenchShape("deepseek", 4096, 7168, 256, 8, rowType),
            "qwen3" => new BenchShape("qwen3", 8192, 2048, 128, 8, rowType),
            _ => throw new ArgumentException($"--preset '{s.Preset}' is not deepseek or qwen3"),
        };
    }

    /// <summary>The short name the reference's JSON uses: <c>f32</c> or <c>bf16</c>.</summary>
    public string RowTypeName => RowType == DType.BFloat16 ? "bf16" : "f32";

    /// <summary>
    /// A dtype option (<paramref name="option"/>, <c>--dtype</c> by default): float32 (f32) or bfloat16 (bf16); null
    /// when not given.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value; the message names the option.</exception>
    public static DType? ParseRowType(string? value, string option = "--dtype") =>
        value switch
        {
            null => null,
            "float32" or "f32" => DType.Float32,
            "bfloat16" or "bf16" => DType.BFloat16,
            _ => throw new ArgumentException($"{option} '{value}' is not float32 (f32) or bfloat16 (bf16)"),
        };
}
