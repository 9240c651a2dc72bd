namespace MoeSharp.Tensors;

/// <summary>
/// Builds the <see cref="InvalidDataException"/> thrown for a malformed safetensors file. (That exception type
/// is sealed, so the structured parts travel in <see cref="Exception.Data"/> under <see cref="SourceKey"/>
/// and <see cref="TensorKey"/>.) The message names the file, the tensor when one is at fault, and the bad value.
/// </summary>
internal static class SafetensorsFormatError
{
    /// <summary><see cref="Exception.Data"/> key of the file path (or stream name).</summary>
    public const string SourceKey = "SafetensorsSource";

    /// <summary><see cref="Exception.Data"/> key of the tensor at fault, absent when none is.</summary>
    public const string TensorKey = "SafetensorsTensor";

    /// <summary>An exception whose message is <c>"{sourceName}: tensor '{tensorName}': {problem}"</c>.</summary>
    public static InvalidDataException Create(string sourceName, string? tensorName, string problem)
    {
        string message = tensorName is null
            ? $"{sourceName}: {problem}"
            : $"{sourceName}: tensor '{tensorName}': {problem}";
        var exception = new InvalidDataException(message);
        exception.Data[SourceKey] = sourceName;
        if (tensorName is not null)
            exception.Data[TensorKey] = tensorName;
        return exception;
    }
}
