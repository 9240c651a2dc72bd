namespace MoeSharp.Cli.Faults;

/// <summary>
/// Arguments the command-line parser cannot take apart: <c>--=value</c> (an empty long option name) makes it fail with an
/// index error instead of a usage error (found by the cli fuzz target, kept in tests/fuzz/regressions/cli).
/// </summary>
internal static class MalformedOptions
{
    /// <summary>The usage message for the first malformed argument before a bare <c>--</c>, or null.</summary>
    public static string? Find(IEnumerable<string> args)
    {
        foreach (string arg in args)
        {
            if (arg == "--") break;
            if (arg.StartsWith("--=", StringComparison.Ordinal)) return $"'{arg}' is not an option: a name must follow '--'";
        }
        return null;
    }
}
