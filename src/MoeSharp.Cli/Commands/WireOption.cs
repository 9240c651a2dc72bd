using MoeSharp.Dispatch;

namespace MoeSharp.Cli.Commands;

/// <summary>The <c>--wire</c> option of <c>moe run</c> and <c>moe bench</c>: how dispatch moves the rows.</summary>
internal static class WireOption
{
    /// <summary>
    /// <c>native</c> (the rows' own dtype, the default) or <c>fp8</c> (FP8 E4M3 with per-128-column scales,
    /// <see cref="RowWireFormat.Fp8E4M3"/>); null when not given.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value; the message names the option and the value.</exception>
    public static RowWireFormat? Parse(string? value) =>
        value switch
        {
            null => null,
            "native" => RowWireFormat.Native,
            "fp8" => RowWireFormat.Fp8E4M3,
            _ => throw new ArgumentException($"--wire '{value}' is not native or fp8"),
        };

    /// <summary>The option's name for a format: <c>native</c> or <c>fp8</c>.</summary>
    public static string Name(RowWireFormat format) => format == RowWireFormat.Fp8E4M3 ? "fp8" : "native";
}
