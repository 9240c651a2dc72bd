namespace MoeSharp.Cli.Faults;

/// <summary>
/// Arguments the command-line parser cannot take apart: <c>--=value</c> and <c>--:value</c> (an empty long option name
/// before either of its value separators) make it fail with an index error instead of a usage error (found by the cli
/// fuzz target, kept in tests/fuzz/regressions/cli).
/// </summary>
internal static class MalformedOptions
{
    /// <summary>The usage message for the first malformed argument, or null.</summary>
    /// <remarks>
    /// Arguments after a bare <c>--</c> are checked too: the parser still tokenizes them (the fuzzer found
    /// <c>-- … --=r</c> failing the same way).
    /// </remarks>
    public static string? Find(IEnumerable<string> args)
    {
        foreach (string arg in args)
        {
            if (arg.Length > 2 && arg.StartsWith("--", StringComparison.Ordinal) && arg[2] is '=' or ':')
            {
                return $"'{arg}' is not an option: a name must follow '--'";
            }
        }
        return null;
    }
}
