using MoeSharp.Compute;

namespace MoeSharp.Training;

/// <summary>
/// A parameter's bfloat16 copy that <see cref="AdamW"/> keeps current while it updates the parameter (one pass over
/// the parameter instead of an update and a later cast). The owner of the copy decides from the two callbacks
/// whether the copy still matches the float32 values.
/// </summary>
/// <param name="layout">Where the copy lives.</param>
/// <param name="written">Called after a step that wrote the copy with the new values.</param>
/// <param name="skipped">Called after a step that changed the values without writing the copy.</param>
internal sealed class BFloat16Shadow(BFloat16CopyLayout layout, Action written, Action skipped)
{
    /// <summary>Where the copy lives.</summary>
    public BFloat16CopyLayout Layout { get; } = layout;

    /// <summary>The step wrote the copy.</summary>
    public void Written() => written();

    /// <summary>The step changed the values but not the copy.</summary>
    public void Skipped() => skipped();
}
