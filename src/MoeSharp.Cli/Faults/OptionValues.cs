using System.Globalization;
using System.Reflection;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// Options that take a value (<c>--save &lt;DIR&gt;</c>, not flags like <c>--json</c>) checked before the parser
/// sees them. Spectre.Console.Cli 0.57 binds the literal <c>__default_command</c> to a value-taking option that
/// ends the command line or is followed by another option, so <c>moe train --save</c> used to save into
/// <c>./__default_command</c>; and it reads <c>--lr -Infinity</c> as short options. Here such an option is a
/// usage error naming it, and each <c>--option value</c> pair becomes one <c>--option=value</c> token, the form
/// the parser never reads as options.
/// </summary>
internal static class OptionValues
{
    /// <summary>What Spectre.Console.Cli binds to an option given no value.</summary>
    public const string DefaultCommandLiteral = "__default_command";

    /// <summary>
    /// <paramref name="args"/> with each value-taking option of <paramref name="settings"/> and its value joined
    /// as <c>--option=value</c>; arguments after a bare <c>--</c> are left as they are.
    /// </summary>
    /// <param name="args">The command line, the command's name first.</param>
    /// <param name="settings">The command's settings type; its <see cref="CommandOptionAttribute"/>s with a required
    /// value (<c>&lt;VALUE&gt;</c>) are the options that take a value.</param>
    /// <exception cref="ArgumentException">Such an option has no value, or an empty one (one line naming
    /// it).</exception>
    public static string[] Join(IReadOnlyList<string> args, Type settings)
    {
        HashSet<string> takeValue = ValueOptions(settings);
        var joined = new List<string>(args.Count);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--")
            {
                joined.AddRange(args.Skip(i));
                break;
            }
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name = eq > 0 ? arg[..eq] : arg;
            if (!takeValue.Contains(name))
            {
                joined.Add(arg);
                continue;
            }
            string? value =
                eq > 0 ? arg[(eq + 1)..]
                : i + 1 < args.Count ? args[++i]
                : null;
            Check(name, value, separate: eq < 0);
            joined.Add($"{name}={value}");
        }
        return [.. joined];
    }

    /// <summary>
    /// Throws when <paramref name="value"/> cannot be <paramref name="option"/>'s value: none, empty, the parser's
    /// placeholder, or (given as the next argument) another option.
    /// </summary>
    private static void Check(string option, string? value, bool separate)
    {
        if (value is null)
            throw new ArgumentException($"{option} needs a value");
        if (value.Length == 0)
            throw new ArgumentException($"{option} needs a value, not an empty one");
        if (value == DefaultCommandLiteral)
            throw new ArgumentException($"{option} '{value}' is not a value (the parser's placeholder)");
        if (separate && value.StartsWith('-') && !IsNegativeNumber(value))
        {
            throw new ArgumentException(
                $"{option} needs a value, but '{value}' follows it (write {option}=VALUE for a value that starts "
                    + "with '-')"
            );
        }
    }

    /// <summary>
    /// <c>-1</c>, <c>-1e5</c>, <c>-.5</c>, <c>-Infinity</c>, <c>-inf</c>, <c>-nan</c>: a value, which the option's
    /// own parsing accepts or rejects (the last two as not a number), not a misplaced option.
    /// </summary>
    private static bool IsNegativeNumber(string token)
    {
        if (token.Length < 2)
            return false;
        if (char.IsAsciiDigit(token[1]) || token[1] == '.')
            return true;
        if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            return true;
        return token[1..].ToLowerInvariant() is "inf" or "infinity" or "nan" or "∞";
    }

    /// <summary>The names (<c>--long</c>, <c>-s</c>) of the options of <paramref name="settings"/> that take a
    /// value.</summary>
    private static HashSet<string> ValueOptions(Type settings)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (PropertyInfo property in settings.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            // A flag has no value name; an optional value ("[VALUE]") may be left out.
            if (
                property.GetCustomAttribute<CommandOptionAttribute>()
                is not { ValueName: not null, ValueIsOptional: false } option
            )
                continue;
            names.UnionWith(option.LongNames.Select(n => "--" + n));
            names.UnionWith(option.ShortNames.Select(n => "-" + n));
        }
        return names;
    }
}
