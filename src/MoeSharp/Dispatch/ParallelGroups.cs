using MoeSharp.Collectives;

namespace MoeSharp.Dispatch;

/// <summary>
/// The process groups a dispatcher runs on: the expert-parallel (EP) group is the whole world, split into
/// sequence-parallel (SP) groups of <see cref="SpSize"/> consecutive ranks. Rank r belongs to data-parallel
/// group <c>r / sp</c> and has SP rank <c>r % sp</c> (the golden files' convention).
/// </summary>
public sealed class ParallelGroups : IDisposable
{
    private ParallelGroups(IProcessGroup world, IProcessGroup? sequenceParallel, int spSize)
    {
        World = world;
        SequenceParallel = sequenceParallel;
        SpSize = spSize;
    }

    /// <summary>The EP group: every rank, each owning E/S experts.</summary>
    public IProcessGroup World { get; }

    /// <summary>This rank's SP group, or null when <see cref="SpSize"/> is 1.</summary>
    public IProcessGroup? SequenceParallel { get; }

    /// <summary>Ranks per SP group.</summary>
    public int SpSize { get; }

    /// <summary>This rank's index in its SP group.</summary>
    public int SpRank => World.Rank % SpSize;

    /// <summary>Index of this rank's SP (data-parallel) group.</summary>
    public int DataParallelIndex => World.Rank / SpSize;

    /// <summary>EP size S (the world's size).</summary>
    public int EpSize => World.Size;

    /// <summary>
    /// Collective over <paramref name="world"/>: splits it into SP groups of <paramref name="spSize"/>
    /// consecutive ranks.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="spSize"/> does not divide the world size.</exception>
    public static ParallelGroups Create(IProcessGroup world, int spSize)
    {
        ArgumentNullException.ThrowIfNull(world);
        if (spSize < 1 || world.Size % spSize != 0)
        {
            throw new ArgumentException(
                $"SP size {spSize} must be at least 1 and divide the world size {world.Size} (rank {world.Rank})",
                nameof(spSize)
            );
        }
        IProcessGroup? sp = spSize == 1 ? null : world.Split(world.Rank / spSize, world.Rank);
        return new ParallelGroups(world, sp, spSize);
    }

    /// <summary>Disposes the SP sub-group; the world belongs to the caller.</summary>
    public void Dispose() => SequenceParallel?.Dispose();
}
