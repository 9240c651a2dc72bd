namespace MoeSharp.Mpi;

/// <summary>
/// Size limits that decide how an exchange is carried. MPI counts and displacements are C <c>int</c>s, so a
/// collective can describe at most <see cref="MaxCollectiveBytes"/> per buffer; larger chunks travel as
/// point-to-point messages of at most <see cref="PieceBytes"/> each. The defaults are MPI's; tests lower them
/// to exercise the large-message path with small buffers.
/// </summary>
internal readonly record struct ExchangeLimits(long MaxCollectiveBytes, int PieceBytes)
{
    /// <summary>The limits MPI imposes: <c>int.MaxValue</c> bytes per collective buffer, 1 GiB pieces.</summary>
    public static ExchangeLimits Mpi { get; } = new(int.MaxValue, 1 << 30);
}
