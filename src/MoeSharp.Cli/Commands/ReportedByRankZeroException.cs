namespace MoeSharp.Cli.Commands;

/// <summary>
/// A usage error found on every rank of an MPI job: rank 0 has printed it before the ranks synchronized, and every
/// rank exits with the usage error code without printing again, so the job's output holds the line once.
/// </summary>
internal sealed class ReportedByRankZeroException(string message) : Exception(message);
