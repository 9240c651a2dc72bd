using System.Globalization;
using System.Text.RegularExpressions;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// Rewrites the command-line parser's conversion failures ("Failed to convert '1e12' to Nullable`1.") into a line
/// that names the option and says what it accepts, without framework type names.
/// </summary>
internal static partial class OptionErrors
{
    [GeneratedRegex(@"^Failed to convert '(?<value>.*)' to (?<type>[^\s]+)\.?$", RegexOptions.Singleline)]
    private static partial Regex ConversionFailure();

    /// <summary>The rewritten message, or null when <paramref name="message"/> is not a conversion failure.</summary>
    /// <param name="message">The parser's message.</param>
    /// <param name="args">The command line, to find the option that carried the value.</param>
    public static string? Rewrite(string message, IReadOnlyList<string> args)
    {
        Match match = ConversionFailure().Match(message.Trim());
        if (!match.Success)
            return null;
        string value = match.Groups["value"].Value;
        string option = OptionOf(value, args) ?? "an option";
        bool integral =
            long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
            || value.All(c => char.IsAsciiDigit(c) || c is '-' or '+') && value.Any(char.IsAsciiDigit);
        return integral
            ? string.Create(
                CultureInfo.InvariantCulture,
                $"{option} '{value}' is out of range: it must be a whole number from {int.MinValue} to {int.MaxValue}"
            )
            : $"{option} '{value}' is not a number";
    }

    /// <summary>The option whose value is <paramref name="value"/>: <c>--x value</c> or <c>--x=value</c>.</summary>
    private static string? OptionOf(string value, IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == value && i > 0 && args[i - 1].StartsWith('-'))
                return args[i - 1];
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            if (a.StartsWith('-') && eq > 0 && a[(eq + 1)..] == value)
                return a[..eq];
        }
        return null;
    }
}
