"""``modgate admission``: a Kubernetes validating admission webhook.

It runs doctor's manifest rules on Pods and on the pod templates of
workloads (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, ...) and
denies or warns about those whose Go settings would break or weaken their
builds. :mod:`review` turns an AdmissionReview into a verdict;
:mod:`webhook` serves it over HTTPS.
"""
