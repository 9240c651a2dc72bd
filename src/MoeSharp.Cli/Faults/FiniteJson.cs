using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// JSON output where a figure that is not a finite number (a rate over zero bytes or zero seconds, such as
/// <c>moe bench --tokens 0</c>) is written as <c>null</c>: JSON has no NaN or infinity, and the serializer refuses
/// them.
/// </summary>
internal static class FiniteJson
{
    /// <summary>Serializer options with the finite-or-null number converter.</summary>
    public static JsonSerializerOptions Options { get; } = new() { Converters = { new FiniteOrNull() } };

    private sealed class FiniteOrNull : JsonConverter<double>
    {
        public override bool HandleNull => false;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value))
                writer.WriteNumberValue(value);
            else
                writer.WriteNullValue();
        }
    }
}
