namespace MoeSharp.Tensors;

/// <summary>
/// A computation was refused before anything was allocated: a size exceeds what a tensor can index, or the
/// estimated memory exceeds what the machine has available. An <see cref="ArgumentException"/> because the
/// sizes come from the caller's arguments (the tool reports it as bad input, exit code 2).
/// </summary>
public sealed class SizeLimitException : ArgumentException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the size and the limit.</summary>
    public SizeLimitException(string message)
        : base(message) { }

    /// <summary>Creates the exception for a memory estimate over the available memory.</summary>
    /// <param name="message">Says what needs the memory.</param>
    /// <param name="neededBytes">The estimate.</param>
    /// <param name="availableBytes">What the machine reports available.</param>
    public SizeLimitException(string message, long neededBytes, long availableBytes)
        : base(message)
    {
        NeededBytes = neededBytes;
        AvailableBytes = availableBytes;
    }

    /// <summary>The estimated bytes, when a memory estimate was refused.</summary>
    public long? NeededBytes { get; }

    /// <summary>The available bytes, when a memory estimate was refused.</summary>
    public long? AvailableBytes { get; }
}
