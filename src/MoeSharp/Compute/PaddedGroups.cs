using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// Groups of consecutive rows laid out padded: group g's rows at rows <c>[g·Capacity, g·Capacity + count)</c> of a
/// padded tensor, zeros after them (see <see cref="IPaddedExpertKernels"/>).
/// </summary>
/// <param name="rowsPerGroup">Rows of each group (copied).</param>
/// <param name="capacity">Rows of every group's block, at least the largest group.</param>
/// <param name="table">The backend's device table of the groups' first rows and counts; whoever uses the layout
/// returns it to the backend's allocator when done.</param>
public sealed class PaddedGroups(ReadOnlySpan<long> rowsPerGroup, int capacity, Tensor table)
{
    private readonly long[] _rowsPerGroup = rowsPerGroup.ToArray();

    /// <summary>Rows of each group.</summary>
    public ReadOnlySpan<long> RowsPerGroup => _rowsPerGroup;

    /// <summary>Rows of every group's block.</summary>
    public int Capacity { get; } = capacity;

    /// <summary>The backend's device table of the groups' first rows and counts.</summary>
    public Tensor Table { get; } = table ?? throw new ArgumentNullException(nameof(table));

    /// <summary>G, the groups.</summary>
    public int Groups => _rowsPerGroup.Length;

    /// <summary>Rows of a padded tensor: <c>G·Capacity</c>.</summary>
    public int PaddedRows => checked(Groups * Capacity);
}
