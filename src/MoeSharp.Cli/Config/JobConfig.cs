using System.Globalization;
using System.Reflection;
using MoeSharp.Cli.Commands;
using Spectre.Console.Cli;
using Tomlyn;
using Tomlyn.Model;

namespace MoeSharp.Cli.Config;

/// <summary>
/// <c>--config job.toml</c>: turns a TOML job file (read with Tomlyn) into command-line options placed after the
/// ones given, except those the command line already sets, so the command line overrides the file, and a
/// <c>[train]</c>/<c>[run]</c>/<c>[bench]</c> section overrides the generic sections (<see cref="ConfigSections"/>).
/// Spectre then parses and validates them as if typed; each is one <c>--option=value</c> token, so a value that
/// starts with <c>-</c> (<c>"--help"</c>, <c>-inf</c>) stays a value and is never read as an option. An unknown
/// section or key, or a value of the wrong type, is one usage error naming the file, the key and the value; a
/// value the option rejects is named by <see cref="WithOrigin"/>.
/// </summary>
internal static class JobConfig
{
    private const string Option = "--config";

    /// <summary>The settings type of each command that takes <c>--config</c>.</summary>
    private static readonly Dictionary<string, Type> Commands = new(StringComparer.Ordinal)
    {
        ["run"] = typeof(RunSettings),
        ["train"] = typeof(TrainSettings),
        ["bench"] = typeof(BenchSettings),
    };

    /// <summary>
    /// <paramref name="args"/> with the job file's options appended (those not given on the command line); the
    /// arguments unchanged when there is no <c>--config</c> or the command takes none.
    /// </summary>
    /// <param name="args">The command line, the command's name first.</param>
    /// <param name="origins">When given, receives for each appended option (<c>--lr</c>) where the file sets it
    /// (<c>--config job.toml: [optimizer] lr = -Infinity</c>), for <see cref="WithOrigin"/>.</param>
    /// <exception cref="ArgumentException">The file cannot be read or parsed, or a key or value is wrong (one
    /// line).</exception>
    public static string[] Expand(string[] args, IDictionary<string, string>? origins = null)
    {
        int at = Array.FindIndex(args, a => a == Option || a.StartsWith(Option + "=", StringComparison.Ordinal));
        if (at < 0 || args.Length == 0 || !Commands.TryGetValue(args[0], out Type? settings))
            return args;
        string? path =
            args[at] == Option ? (at + 1 < args.Length ? args[at + 1] : null) : args[at][(Option.Length + 1)..];
        if (string.IsNullOrEmpty(path))
            throw new ArgumentException($"{Option} needs a value"); // Spectre would run without the file

        TomlTable file = Read(path);
        Dictionary<string, Type> options = OptionsOf(settings);
        var given = new HashSet<string>(
            args.Where(a => a.StartsWith("--", StringComparison.Ordinal)).Select(a => a[2..].Split('=', 2)[0]),
            StringComparer.Ordinal
        );
        // Generic sections first, then the command's own section, which replaces what they set.
        var fromFile = new Dictionary<string, (string Token, string Origin)>(StringComparer.Ordinal);
        foreach (var (section, body) in file.OrderBy(kv => Commands.ContainsKey(kv.Key)))
        {
            if (body is TomlTableArray)
            {
                throw Error(
                    path,
                    $"[[{section}]] is an array of tables; write it as one [{section}] section (single brackets)"
                );
            }
            if (body is not TomlTable table)
            {
                throw Error(
                    path,
                    $"'{section}' = {Show(body)} is outside a section; put it under one of "
                        + string.Join(", ", ConfigSections.Generic.Keys.Concat(Commands.Keys).Select(s => $"[{s}]"))
                );
            }
            bool commandSection = Commands.TryGetValue(section, out Type? sectionSettings);
            if (!commandSection && !ConfigSections.Generic.ContainsKey(section))
            {
                throw Error(
                    path,
                    $"unknown section [{section}]; known: "
                        + string.Join(", ", ConfigSections.Generic.Keys.Concat(Commands.Keys).Select(s => $"[{s}]"))
                );
            }
            foreach (var (key, value) in table)
            {
                string option = key.Replace('_', '-');
                bool known = commandSection
                    ? OptionsOf(sectionSettings!).ContainsKey(option)
                    : ConfigSections.Generic[section].Contains(option);
                if (!known)
                    throw Error(path, $"[{section}] unknown key '{key}' (= {Show(value)})");
                if (ConfigSections.IsDescriptive(option))
                {
                    if (value is not string)
                        throw Error(path, $"[{section}] {key} = {Show(value)}: expected a string");
                    continue;
                }
                // Keys of another command's section, or options this command lacks, do not apply here.
                if ((commandSection && section != args[0]) || !options.TryGetValue(option, out Type? type))
                    continue;
                if (Token(path, section, key, option, value, type) is string token)
                    fromFile[option] = (token, $"{Option} {path}: [{section}] {key} = {Show(value)}");
            }
        }
        var expanded = new List<string>(args);
        foreach (var (option, (token, origin)) in fromFile)
        {
            if (given.Contains(option))
                continue;
            expanded.Add(token);
            origins?.Add("--" + option, origin);
        }
        return [.. expanded];
    }

    /// <summary>
    /// <paramref name="message"/> (a usage error) followed by where the job file sets the first option it names,
    /// when that option came from the file: the option's own check names only <c>--lr</c>, which the command line
    /// does not hold.
    /// </summary>
    /// <param name="message">The usage error.</param>
    /// <param name="origins">What <see cref="Expand"/> recorded.</param>
    public static string WithOrigin(string message, IReadOnlyDictionary<string, string> origins)
    {
        (int At, string Origin)? first = null;
        foreach (var (option, origin) in origins)
        {
            for (int at = message.IndexOf(option, StringComparison.Ordinal); at >= 0; )
            {
                int end = at + option.Length;
                // "--lr" but not "--lr-warmup": the name must end there.
                if (end == message.Length || !(char.IsAsciiLetterOrDigit(message[end]) || message[end] == '-'))
                {
                    if (first is null || at < first.Value.At)
                        first = (at, origin);
                    break;
                }
                at = message.IndexOf(option, end, StringComparison.Ordinal);
            }
        }
        return first is { Origin: var where } ? $"{message} ({where})" : message;
    }

    private static TomlTable Read(string path)
    {
        string text;
        try
        {
            // 16 MiB: a job file is a few hundred bytes; --config /dev/zero is refused, not read until memory ends.
            text = MoeSharp.Checkpoints.BoundedFile.ReadAllText(path, 16 << 20, "a job file");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new ArgumentException($"{Option} {path}: {ex.Message}", ex);
        }
        try
        {
            return TomlSerializer.Deserialize<TomlTable>(text) ?? new TomlTable();
        }
        catch (TomlException ex)
        {
            throw new ArgumentException($"{Option} {path}: not valid TOML: {ex.Message.ReplaceLineEndings(" ")}", ex);
        }
    }

    /// <summary>The command's options: long name → property type.</summary>
    private static Dictionary<string, Type> OptionsOf(Type settings)
    {
        var options = new Dictionary<string, Type>(StringComparer.Ordinal);
        foreach (PropertyInfo property in settings.GetProperties())
        {
            if (property.GetCustomAttribute<CommandOptionAttribute>() is not { } attribute)
                continue;
            foreach (string name in attribute.LongNames)
                options[name] = property.PropertyType;
        }
        options.Remove("config");
        return options;
    }

    /// <summary>
    /// The command-line token for one value (<c>--option=value</c>, or <c>--flag</c>), checked against the option's
    /// type; null for a false flag.
    /// </summary>
    private static string? Token(string path, string section, string key, string option, object value, Type type)
    {
        Type target = Nullable.GetUnderlyingType(type) ?? type;
        string flag = "--" + option;
        string? text = (target, value) switch
        {
            (_, _) when target == typeof(bool) && value is bool b => b ? "" : null,
            (_, long n) when target == typeof(int) && n is >= int.MinValue and <= int.MaxValue => n.ToString(
                CultureInfo.InvariantCulture
            ),
            (_, long n) when target == typeof(float) || target == typeof(double) => n.ToString(
                CultureInfo.InvariantCulture
            ),
            (_, double d) when target == typeof(float) || target == typeof(double) => d.ToString(
                "R",
                CultureInfo.InvariantCulture
            ),
            (_, string { Length: 0 }) => throw Error(path, $"[{section}] {key} = \"\": expected a value ({flag})"),
            (_, string s) when target == typeof(string) => s,
            _ => throw Error(path, $"[{section}] {key} = {Show(value)}: expected {Expected(target)} ({flag})"),
        };
        return text switch
        {
            null => null, // a false flag: not given
            "" when target == typeof(bool) => flag,
            _ => $"{flag}={text}",
        };
    }

    private static string Expected(Type target) =>
        target == typeof(bool) ? "true or false"
        : target == typeof(int) ? "an integer"
        : target == typeof(float) || target == typeof(double) ? "a number"
        : "a string";

    private static string Show(object? value) =>
        value switch
        {
            string s => $"\"{s}\"",
            bool b => b ? "true" : "false",
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            TomlTable => "a table",
            TomlTableArray => "an array of tables",
            TomlArray => "an array",
            null => "nothing",
            _ => value.ToString() ?? "?",
        };

    private static ArgumentException Error(string path, string message) => new($"{Option} {path}: {message}");
}
