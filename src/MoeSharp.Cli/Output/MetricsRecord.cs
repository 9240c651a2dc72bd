using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoeSharp.Cli.Output;

/// <summary>
/// One line of the <c>moesharp-metrics/1</c> JSON-lines schema (docs/metrics.md): <c>schema</c>, <c>command</c> and
/// <c>event</c> first, then the event's fields and the command's configuration, all snake_case, flat.
/// </summary>
internal sealed class MetricsRecord
{
    /// <summary>The schema name every line carries.</summary>
    public const string Schema = "moesharp-metrics/1";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        // A diverged loss is NaN or Infinity: written as the strings "NaN"/"Infinity" rather than failing the run.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    // Insertion order is the order of the fields on the line.
    private readonly Dictionary<string, object?> _fields = new(StringComparer.Ordinal);

    private MetricsRecord(string command, string eventName)
    {
        _fields["schema"] = Schema;
        _fields["command"] = command;
        _fields["event"] = eventName;
    }

    /// <summary>
    /// A record of <paramref name="command"/> (<c>run</c>, <c>train</c>, <c>bench</c>) and <paramref
    /// name="eventName"/>.
    /// </summary>
    public static MetricsRecord Create(string command, string eventName) => new(command, eventName);

    /// <summary>Sets a field (a later value replaces an earlier one); returns this record.</summary>
    public MetricsRecord With(string key, object? value)
    {
        _fields[key] = value;
        return this;
    }

    /// <summary>
    /// Sets every field of <paramref name="fields"/> not set yet (configuration after the event's own fields).
    /// </summary>
    public MetricsRecord WithAll(IEnumerable<KeyValuePair<string, object?>> fields)
    {
        foreach (var (key, value) in fields)
            _fields.TryAdd(key, value);
        return this;
    }

    /// <summary>The record as one line of JSON (no newline).</summary>
    public string ToJson() => JsonSerializer.Serialize(_fields, JsonOptions);
}
